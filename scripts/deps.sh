#!/bin/sh
# scripts/deps.sh -- install what building and testing rproxy needs (Debian/Ubuntu).
#
#   sh scripts/deps.sh          compilers and test tools
#   sh scripts/deps.sh bench    also nginx, HAProxy and wrk for `make bench`
#   sh scripts/deps.sh demo     only what `make demo` needs: a compiler, make,
#                               BearSSL, curl, openssl (its TLS certificate)
#
# Checks first (dpkg status, or the command being on PATH), so a machine that
# has everything does nothing.  As root, missing packages are installed with
# apt-get (one `apt-get update`, non-interactive).  Otherwise it prints what
# to install and exits 1.
set -u
PATH=$PATH:/usr/sbin:/sbin # nginx, haproxy

# package:command -- the package counts as present when dpkg has it installed
# or, for packages with a command, when that command is on PATH.  A package
# of a foreign architecture is written NAME/ARCH (apt's NAME:ARCH); its
# architecture is added to dpkg first (tests/package: the arm64 and armhf
# .debs, linked against those architectures' libbearssl).
BASE="build-essential:cc make:make curl:curl python3:python3 valgrind:valgrind
      clang:clang libclang-rt-14-dev: netcat-openbsd: procps:ps openssl:openssl
      libbearssl-dev: iproute2:ip gcc-arm-none-eabi:arm-none-eabi-gcc
      libnewlib-arm-none-eabi: qemu-system-arm:qemu-system-arm dpkg-dev:dpkg-source
      xxd:xxd debhelper:dh lintian:lintian qemu-user:qemu-aarch64 file:file man-db:man
      systemd:systemd-analyze gcc-aarch64-linux-gnu:aarch64-linux-gnu-gcc
      gcc-arm-linux-gnueabihf:arm-linux-gnueabihf-gcc libc6-dev/arm64: libc6-dev/armhf:
      libbearssl-dev/arm64: libbearssl-dev/armhf: liblwip-dev: whois:mkpasswd"
BENCH="nginx-light:nginx haproxy:haproxy wrk:wrk"
DEMO="build-essential:cc make:make libbearssl-dev: curl:curl openssl:openssl"

want=$BASE
case ${1:-} in
    "") ;;
    bench) want="$BASE $BENCH" ;;
    demo) want=$DEMO ;;
    *) echo "usage: sh scripts/deps.sh [bench|demo]" >&2; exit 2 ;;
esac

pkgs=
for entry in $want; do pkgs="$pkgs $(echo "${entry%%:*}" | tr / :)"; done
# one dpkg-query for all: the names of those installed (NAME and NAME:ARCH)
installed=" $(dpkg-query -W -f='${Package} ${binary:Package} ${Status}\n' $pkgs 2>/dev/null |
    awk '$NF == "installed" { printf "%s %s ", $1, $2 }')"

missing=
for entry in $want; do
    pkg=$(echo "${entry%%:*}" | tr / :) cmd=${entry#*:}
    case $installed in *" $pkg "*) continue ;; esac
    [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1 && continue
    missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: missing:$missing" >&2
    echo "deps: install them, e.g.: sudo apt-get install$missing" >&2
    exit 1
fi
echo "deps: installing$missing" >&2
for arch in $(echo "$missing" | tr ' ' '\n' | sed -n 's/.*:\(.*\)/\1/p' | sort -u); do
    dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch"
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 &&
    apt-get install -y -q --no-install-recommends $missing </dev/null >&2 || {
    echo "deps: apt-get install$missing failed" >&2
    exit 1
}
