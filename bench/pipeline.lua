-- bench/pipeline.lua -- wrk script: every write carries DEPTH GETs of the
-- URL (HTTP/1.1 pipelining, as TechEmpower's plaintext test does), so the
-- load generator spends a syscall per DEPTH requests and the proxy, not wrk,
-- is the limit.  wrk still counts one request per response it parses.
-- Usage: wrk -s bench/pipeline.lua URL -- DEPTH
init = function(args)
    local depth = tonumber(args[1]) or 1
    local r = {}
    for i = 1, depth do
        r[i] = wrk.format()
    end
    req = table.concat(r)
end

request = function()
    return req
end
