# boards/mps2-an386/devices.sh -- sourced (not run) by qemu.sh (`make qemu`)
# and tests/qemu/run.sh: the four devices gateway.conf names, on the host's
# 127.0.0.1:9101-9104, which the guest reaches through slirp as 10.0.2.2.
#
#   gw_devices DEVSIM SENSOR_LOG
#
# starts them -- dev1 and dev2 (weights 3 and 1), big (/big: 1 MiB) and
# sensor (/sensor on a cache=on route: Cache-Control max-age=300; its stderr,
# where SIGUSR1 prints its request count, goes to SENSOR_LOG) -- sets $dev1
# $dev2 $big $sensor to their pids and appends them to $pids.
gw_devices() {
    "$1" -p 9101 -a 127.0.0.1 -n dev1 2>/dev/null & dev1=$!
    "$1" -p 9102 -a 127.0.0.1 -n dev2 2>/dev/null & dev2=$!
    "$1" -p 9103 -a 127.0.0.1 -n big -s 1048576 2>/dev/null & big=$!
    "$1" -p 9104 -a 127.0.0.1 -n sensor -s 3000 -H 'Cache-Control: public, max-age=300' 2>"$2" &
    sensor=$!
    pids="$pids $dev1 $dev2 $big $sensor"
}
