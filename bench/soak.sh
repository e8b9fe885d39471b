#!/bin/sh
# bench/soak.sh -- soak rproxy: many requests, many connections, then check that its
# open descriptors and memory came back (issue 7).  A test with pass/fail, printed as TAP.
#
#   sh bench/soak.sh                      1,000,000 requests at 200 connections (~5 min)
#   SOAK_REQUESTS=N SOAK_CONNS=C sh bench/soak.sh
#   SOAK_VALGRIND=1 sh bench/soak.sh      ./rproxy under valgrind, 20,000 requests by
#                                         default; valgrind must report zero errors
#
# The mix (keep-alive, Connection: close, HEAD, Content-Length and chunked uploads,
# chunked replies, pipelining, 404 / 400 / 502, clients aborting uploads) and the checks
# are in bench/soak.py.  Devices: build/devsim and an asyncio device for chunked replies,
# all on 127.0.0.1.  Environment: RPROXY (default ./rproxy), DEVSIM (build/devsim),
# SOAK_RSS_SLACK_KB (2048), SOAK_SEED (7).  Exit status 1 when a check failed.
set -u
cd "$(dirname "$0")/.." || exit 1
if [ "${SOAK_VALGRIND:-0}" = 1 ]; then
    : "${SOAK_REQUESTS:=20000}"
    command -v valgrind >/dev/null 2>&1 || { echo "not ok 1 - soak: valgrind missing"; exit 1; }
fi
export SOAK_REQUESTS=${SOAK_REQUESTS:-1000000}
RPROXY=${RPROXY:-./rproxy}
DEVSIM=${DEVSIM:-build/devsim}
if [ "$RPROXY" = ./rproxy ] && [ "$DEVSIM" = build/devsim ]; then
    make --no-print-directory rproxy build/devsim >/dev/null || exit 1
fi
ulimit -n 4096 2>/dev/null
RPROXY=$RPROXY DEVSIM=$DEVSIM exec python3 bench/soak.py
