#!/bin/sh
# tests/qemu/ops.sh -- the "ops" gateway firmware (make firmware-ops: the
# mps2-an386 board with RP_BOARD_OPS, boards/mps2-an386/ops.conf) end to end
# under QEMU: issue 17's devices by DNS name on the emulated Cortex-M4,
# looked up through lwIP's resolver from a name server the test runs on the
# host's 127.0.0.1:9153 (the guest's 10.0.2.2:9153 through QEMU's user
# networking; no system resolver, no real network).  The checks, with curl
# through the firmware, are in tests/qemu/ops.py: a device by name serves
# once its name resolves; the answer changes mid-test and traffic follows
# within resolve=; a name that does not resolve at boot leaves its route 503
# while the rest serves, until it resolves; empty, NXDOMAIN, SERVFAIL,
# truncated, wrong-family and huge answers keep the last good address; a name
# server that takes 4 s delays no client.  TAP output; the UART log is
# build/qemu-ops-uart.log.
set -u
cd "$(dirname "$0")/../.."
command -v qemu-system-arm >/dev/null 2>&1 || { echo "1..0 # SKIP qemu-system-arm missing (tests/qemu/run.sh installs it)"; exit 0; }
command -v arm-none-eabi-gcc >/dev/null || { echo "1..0 # SKIP arm-none-eabi-gcc missing"; exit 0; }
sh scripts/fetch-deps.sh lwip bearssl >&2 || exit 1
make -s firmware-ops >&2 || { echo "Bail out! ops firmware build failed"; exit 1; }
exec python3 tests/qemu/ops.py
