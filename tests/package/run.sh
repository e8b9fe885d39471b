#!/bin/sh
# tests/package/run.sh -- issue 18: install, man pages, unit, .deb, daemon, cross builds.
#
#   sh tests/package/run.sh        (as root, from the repository root; make test runs it)
#
# TAP lines "ok N - name" / "not ok N - name" (scripts/runtests.sh counts them):
#   make install DESTDIR tree; man/ made from README.md; systemd-analyze verify
#   and security --offline on the unit; make deb (amd64, arm64, armhf: built
#   once, kept in build/deb/ until an input changes) inspected with dpkg-deb
#   -I/-c and lintian; the amd64 .deb installed into a throwaway root (an
#   overlay of this system, in a mount namespace of its own) where its
#   maintainer scripts run, the unit's commands start the packaged binary as
#   the rproxy user and it serves a request; tests/package/daemon.py on
#   build/rproxy-asan; the arm64 and armhf binaries from their .debs under qemu-user.
# Needs root (overlay mount, -u), debhelper, lintian, qemu-user, the cross
# compilers and libbearssl-dev:arm64/:armhf (scripts/deps.sh installs them).
set -u
cd "$(dirname "$0")/../.." || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-package.XXXXXX") || exit 1
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
n=0
fails=0
VERSION=$(sed -n 's/^#define RP_VERSION "\(.*\)"/\1/p' rproxy.h)
HOSTARCH=$(dpkg --print-architecture)

ok() { # ok COND-STATUS NAME [DETAIL-FILE]
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        fails=$((fails + 1))
        [ -n "${3:-}" ] && [ -f "$3" ] && tail -20 "$3" | sed 's/^/#   /'
    fi
}

[ "$(id -u)" = 0 ] || { echo "not ok 1 - tests/package/run.sh must run as root"; exit 1; }
make --no-print-directory rproxy build/rproxy-asan build/devsim >"$TMP/make.log" 2>&1
ok $? "make rproxy" "$TMP/make.log"

# ---- make install ----
D=$TMP/dest
make --no-print-directory install DESTDIR="$D" PREFIX=/usr >"$TMP/install.log" 2>&1
r=$?
for f in usr/sbin/rproxy:755 etc/rproxy/rproxy.conf:644 usr/share/man/man8/rproxy.8:644 \
         usr/share/man/man5/rproxy.conf.5:644 lib/systemd/system/rproxy.service:644 \
         etc/logrotate.d/rproxy:644; do
    [ "$(stat -c %a "$D/${f%%:*}" 2>/dev/null)" = "${f#*:}" ] || { echo "missing or mode: $f" >>"$TMP/install.log"; r=1; }
done
[ "$(find "$D" -type f | wc -l)" = 6 ] || { find "$D" -type f >>"$TMP/install.log"; r=1; }
grep -q '^ExecStart=/usr/sbin/rproxy -g 10000 -c /etc/rproxy/rproxy.conf$' "$D/lib/systemd/system/rproxy.service" || r=1
ok $r "make install DESTDIR=... PREFIX=/usr: the FHS tree (6 files, modes), unit paths filled in" "$TMP/install.log"

D2=$TMP/dest2
make --no-print-directory install DESTDIR="$D2" >/dev/null 2>&1 &&
    [ -x "$D2/usr/local/sbin/rproxy" ] && [ -f "$D2/usr/local/etc/rproxy/rproxy.conf" ] &&
    grep -q '^ExecStartPre=/usr/local/sbin/rproxy -t -c /usr/local/etc/rproxy/rproxy.conf$' \
        "$D2/usr/local/lib/systemd/system/rproxy.service"
ok $? "make install with the default PREFIX=/usr/local: /usr/local/sbin, /usr/local/etc"
echo "listen 1" >"$D/etc/rproxy/rproxy.conf"
make --no-print-directory install DESTDIR="$D" PREFIX=/usr >"$TMP/reinstall.log" 2>&1 &&
    [ "$(cat "$D/etc/rproxy/rproxy.conf")" = "listen 1" ] && grep -q keeping "$TMP/reinstall.log"
ok $? "make install again keeps an existing rproxy.conf" "$TMP/reinstall.log"

# The example: every directive commented; uncommented (less its TLS lines) it passes -t.
sed -n 's/^#\([a-z]\)/\1/p' dist/rproxy.conf | grep -v '^listen 443\|^tls ' >"$TMP/example.conf"
! grep -q '^[a-z]' dist/rproxy.conf && ./rproxy -t -c "$TMP/example.conf" >"$TMP/example.log" 2>&1 &&
    ! ./rproxy -t -c dist/rproxy.conf >/dev/null 2>&1
ok $? "the example rproxy.conf is all comments (fails -t) and its directives pass -t" "$TMP/example.log"

# ---- man pages ----
python3 scripts/manpages.py "$TMP/man" && diff -u man/rproxy.8 "$TMP/man/rproxy.8" >"$TMP/man.diff" &&
    diff -u man/rproxy.conf.5 "$TMP/man/rproxy.conf.5" >>"$TMP/man.diff"
ok $? "man/ is what scripts/manpages.py makes from README.md (make man)" "$TMP/man.diff"
r=0
for o in $(./rproxy -h | head -1 | grep -o '\[-[a-z]' | cut -c3); do
    grep -q "\\\\fB\\\\-$o\\\\fR" man/rproxy.8 || { echo "-$o not in rproxy.8" >>"$TMP/opts"; r=1; }
    grep -q "\`-$o" README.md || { echo "-$o not in README" >>"$TMP/opts"; r=1; }
done
for d in $(sed -n 's/^| `\([a-z_]*\) .*/\1/p' README.md | sort -u); do
    grep -q "^\\\\fB$d" man/rproxy.conf.5 || { echo "directive $d not in rproxy.conf.5" >>"$TMP/opts"; r=1; }
done
ok $r "every option of rproxy -h is in rproxy(8) and README, every directive in rproxy.conf(5)" "$TMP/opts"
LC_ALL=C.UTF-8 MANROFFSEQ='' man --warnings -l man/rproxy.8 man/rproxy.conf.5 2>"$TMP/groff" >/dev/null
[ ! -s "$TMP/groff" ]
ok $? "man --warnings: the pages format without a groff warning" "$TMP/groff"

# ---- the unit ----
U=$TMP/unit
mkdir -p "$U"
sed "s|/usr/sbin/rproxy|$D/usr/sbin/rproxy|g" "$D/lib/systemd/system/rproxy.service" >"$U/rproxy.service"
MANPATH="$D/usr/share/man" systemd-analyze verify "$U/rproxy.service" >"$TMP/verify" 2>&1 &&
    [ ! -s "$TMP/verify" ]
ok $? "systemd-analyze verify rproxy.service (its man pages found too): no complaint" "$TMP/verify"
systemd-analyze security --offline=true "$U/rproxy.service" >"$TMP/security" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for rproxy.service: \([0-9.]*\).*/\1/p' "$TMP/security")
grep -q "exposure \*\*$exposure OK\*\*" README.md && awk "BEGIN { exit !($exposure <= 2.0) }"
ok $? "systemd-analyze security: exposure $exposure (<= 2.0, the figure README states)" "$TMP/security"
u=$D/lib/systemd/system/rproxy.service
r=0
for k in Type=notify 'ExecStartPre=/usr/sbin/rproxy -t -c /etc/rproxy/rproxy.conf' \
         'ExecReload=/bin/kill -HUP $MAINPID' User=rproxy AmbientCapabilities=CAP_NET_BIND_SERVICE \
         ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
         'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service; do
    grep -qxF "$k" "$u" || { echo "missing: $k" >>"$TMP/keys"; r=1; }
done
ok $r "the unit: Type=notify, ExecStartPre -t, ExecReload HUP, User=rproxy, the hardening" "$TMP/keys"

# ---- the .debs: built once per input change ----
newest_input() {
    find rproxy.c rproxy.h port boards/host debian dist man Makefile -newer "$1" -type f 2>/dev/null | head -1
}
# The three builds that are due, two at a time (2 cores).
for a in $HOSTARCH arm64 armhf; do
    deb=build/deb/rproxy_${VERSION}_$a.deb
    if [ -f "$deb" ] && [ -z "$(newest_input "$deb")" ]; then
        echo 0 >"$TMP/deb-$a.rc"; echo "kept from an earlier run" >"$TMP/deb-$a.how"
        continue
    fi
    rm -f "$deb"
    echo built >"$TMP/deb-$a.how"
    [ "$a" = "$HOSTARCH" ] && arch= || arch=ARCH=$a
    { make --no-print-directory deb $arch >"$TMP/deb-$a.log" 2>&1; echo $? >"$TMP/deb-$a.rc"; } &
    [ "$a" = arm64 ] && wait
done
wait
for a in $HOSTARCH arm64 armhf; do
    deb=build/deb/rproxy_${VERSION}_$a.deb
    r=$(cat "$TMP/deb-$a.rc")
    [ -f "$deb" ] || r=1
    [ "$a" = "$HOSTARCH" ] && t="make deb" || t="make deb ARCH=$a"
    ok $r "$t: $deb ($(cat "$TMP/deb-$a.how"))" "$TMP/deb-$a.log"
done
DEB=build/deb/rproxy_${VERSION}_$HOSTARCH.deb

dpkg-deb -I "$DEB" >"$TMP/info" 2>&1
r=$?
for k in "Package: rproxy" "Version: $VERSION" "Architecture: $HOSTARCH" "Section: net"; do
    grep -qF " $k" "$TMP/info" || r=1
done
grep -q '^ Depends:.*libbearssl0' "$TMP/info" && grep -q '^ Depends:.*adduser' "$TMP/info" || r=1
dpkg-deb -e "$DEB" "$TMP/ctl" && [ "$(cat "$TMP/ctl/conffiles")" = "/etc/logrotate.d/rproxy
/etc/rproxy/rproxy.conf" ] || r=1
grep -q 'rproxy -t -c' "$TMP/ctl/postinst" && grep -q 'adduser --system' "$TMP/ctl/postinst" &&
    grep -q 'deb-systemd-helper' "$TMP/ctl/postinst" && grep -q 'deb-systemd-invoke stop' "$TMP/ctl/prerm" &&
    ! grep -q 'deb-systemd-invoke stop' "$TMP/ctl/preinst" 2>/dev/null || r=1
ok $r "dpkg-deb -I: rproxy $VERSION $HOSTARCH, Depends libbearssl0 and adduser, conffiles, maintainer scripts" "$TMP/info"
dpkg-deb -c "$DEB" | awk '{print $1, $6}' >"$TMP/contents"
r=0
for f in "-rwxr-xr-x ./usr/sbin/rproxy" "-rw-r--r-- ./lib/systemd/system/rproxy.service" \
         "-rw-r--r-- ./etc/rproxy/rproxy.conf" "-rw-r--r-- ./usr/share/man/man8/rproxy.8.gz" \
         "-rw-r--r-- ./usr/share/man/man5/rproxy.conf.5.gz" "-rw-r--r-- ./usr/share/doc/rproxy/copyright"; do
    grep -qxF -- "$f" "$TMP/contents" || { echo "missing: $f" >>"$TMP/contents.err"; r=1; }
done
grep -qi bearssl "$TMP/contents" && { echo "BearSSL bundled" >>"$TMP/contents.err"; r=1; }
ok $r "dpkg-deb -c: binary, unit, conffile, man pages, copyright; no BearSSL inside" "$TMP/contents.err"
for a in arm64 armhf; do
    rm -rf "build/cross/$a"
    mkdir -p "build/cross/$a" && dpkg-deb -x "build/deb/rproxy_${VERSION}_$a.deb" "build/cross/$a"
done
file build/cross/arm64/usr/sbin/rproxy | grep -q 'ARM aarch64' &&
    file build/cross/armhf/usr/sbin/rproxy | grep -q 'ARM, EABI5' &&
    dpkg-deb -I "build/deb/rproxy_${VERSION}_arm64.deb" | grep -q 'Architecture: arm64' &&
    dpkg-deb -I "build/deb/rproxy_${VERSION}_armhf.deb" | grep -q 'Architecture: armhf'
ok $? "the arm64 and armhf .debs hold AArch64 and ARM EABI5 binaries"
lintian --pedantic build/deb/rproxy_${VERSION}_$HOSTARCH.deb build/deb/rproxy_${VERSION}_arm64.deb \
    build/deb/rproxy_${VERSION}_armhf.deb 2>&1 | grep -v 'running with root privileges' >"$TMP/lintian"
! grep -q '^[EWIP]:' "$TMP/lintian"
ok $? "lintian --pedantic on the three .debs: no error, warning, info or pedantic tag" "$TMP/lintian"

# ---- the .deb in a throwaway root ----
# An overlay of this system (upper layer on a tmpfs, in a mount namespace of
# its own): dpkg -i runs the real maintainer scripts there; nothing reaches the host.
PORT=$(python3 -c 'import socket
for p in range(600, 1000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass')
build/devsim -a 127.0.0.1 -p 0 -n pkgdev 2>"$TMP/devsim.err" &
devsim=$!
DEVPORT=
for i in $(seq 50); do
    DEVPORT=$(sed -n 's/.*listening on .*:\([0-9]*\).*/\1/p' "$TMP/devsim.err")
    [ -n "$DEVPORT" ] && break
    sleep 0.1
done
cp "$DEB" "$TMP/rproxy.deb"
cp tests/package/unitrun.py "$TMP/unitrun.py"
cat >"$TMP/inroot.sh" <<EOF
set -u
cd /
echo "## dpkg -i"
dpkg -i /mnt/rproxy.deb; echo "dpkg-rc=\$?"
echo "## user"; getent passwd rproxy
echo "## enabled"; readlink /etc/systemd/system/multi-user.target.wants/rproxy.service
echo "## conffile"; dpkg-query -W -f='\${Conffiles}\n' rproxy
printf 'listen 127.0.0.1:$PORT\npool lan\ndevice lan 127.0.0.1:$DEVPORT\nroute pool=lan\n' >/etc/rproxy/rproxy.conf
echo "## check"; /usr/sbin/rproxy -t -c /etc/rproxy/rproxy.conf; echo "check-rc=\$?"
echo "## reinstall"; dpkg -i /mnt/rproxy.deb; echo "reinstall-rc=\$?"
echo "## after"; cat /etc/rproxy/rproxy.conf
echo "## unit"; python3 /mnt/unitrun.py /lib/systemd/system/rproxy.service $PORT
echo "## purge"; dpkg --purge rproxy; echo "purge-rc=\$?"
[ -e /etc/rproxy/rproxy.conf ] || echo "conffile-gone"
[ -e /usr/sbin/rproxy ] || echo "binary-gone"
getent passwd rproxy >/dev/null && echo "user-kept"
EOF
cat >"$TMP/nodeps.sh" <<EOF
dpkg -r --force-depends libbearssl0:$HOSTARCH >/dev/null 2>&1
dpkg -i /mnt/rproxy.deb; echo "dpkg-rc=\$?"
EOF
inroot() { # inroot SCRIPT: run SCRIPT in a fresh throwaway root, /mnt = $TMP
    unshare -m sh -c '
        set -e
        mkdir -p "$1/ov" && mount -t tmpfs tmpfs "$1/ov"
        mkdir -p "$1/ov/up" "$1/ov/work" "$1/ov/root"
        mount -t overlay overlay -o "lowerdir=/,upperdir=$1/ov/up,workdir=$1/ov/work" "$1/ov/root"
        r=$1/ov/root
        mount -t proc proc "$r/proc"; mount --bind /dev "$r/dev"; mount --bind /sys "$r/sys"
        mount -t tmpfs tmpfs "$r/run"; mount -t tmpfs tmpfs "$r/tmp"; mount --bind "$1" "$r/mnt"
        mkdir -p "$r/tmp"; chmod 1777 "$r/tmp"
        exec chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh "/mnt/$2"' inroot "$TMP" "$1"
}
inroot inroot.sh >"$TMP/root.log" 2>&1
grep -q '^dpkg-rc=0$' "$TMP/root.log" && grep -q '^rproxy:x:[0-9]*:[0-9]*:.*:/nonexistent:' "$TMP/root.log" &&
    grep -q '^/lib/systemd/system/rproxy.service$' "$TMP/root.log" &&
    grep -q 'does not pass .rproxy -t. yet' "$TMP/root.log" && grep -q '^  /etc/rproxy/rproxy.conf:[0-9]*: no listen line' "$TMP/root.log"
ok $? "throwaway root: dpkg -i creates user rproxy, enables the unit, does not start it (-t fails on the example)" "$TMP/root.log"
grep -q '/etc/rproxy/rproxy.conf [0-9a-f]' "$TMP/root.log" && grep -q '/etc/logrotate.d/rproxy [0-9a-f]' "$TMP/root.log"
ok $? "throwaway root: dpkg registers the conffiles" "$TMP/root.log"
grep -q '^/etc/rproxy/rproxy.conf: ok$' "$TMP/root.log" && grep -q '^check-rc=0$' "$TMP/root.log"
ok $? "throwaway root: the packaged binary checks the admin's config (-t)" "$TMP/root.log"
sed -n '/^## reinstall/,/^## unit/p' "$TMP/root.log" >"$TMP/reinstall.log"
grep -q '^reinstall-rc=0$' "$TMP/reinstall.log" && ! grep -q 'does not pass' "$TMP/reinstall.log" &&
    grep -q "^listen 127.0.0.1:$PORT\$" "$TMP/reinstall.log"
ok $? "throwaway root: dpkg -i again keeps the admin's conffile, and -t passes in postinst" "$TMP/reinstall.log"
sed -n '/^## unit/,/^## purge/p' "$TMP/root.log" | grep '^\(not \)\{0,1\}ok ' | sed 's/^\(\(not \)\{0,1\}ok\) [0-9]* - /\1 - throwaway root: /' >"$TMP/unit.tap"
cat "$TMP/unit.tap"
[ "$(grep -c '^ok' "$TMP/unit.tap")" = 5 ]
ok $? "throwaway root: the unit's five checks ran" "$TMP/root.log"
grep -q '^purge-rc=0$' "$TMP/root.log" && grep -q '^conffile-gone$' "$TMP/root.log" &&
    grep -q '^binary-gone$' "$TMP/root.log" && grep -q '^user-kept$' "$TMP/root.log"
ok $? "throwaway root: dpkg --purge removes binary and conffile, keeps the system user" "$TMP/root.log"
inroot nodeps.sh >"$TMP/nodeps.log" 2>&1
grep -q 'depends on libbearssl0' "$TMP/nodeps.log" && grep -q '^dpkg-rc=1$' "$TMP/nodeps.log"
ok $? "throwaway root without libbearssl0: dpkg -i refuses (the dependency is real, not bundled)" "$TMP/nodeps.log"
kill "$devsim" 2>/dev/null
wait "$devsim" 2>/dev/null

# ---- the daemon, native and cross (their own TAP lines) ----
python3 tests/package/daemon.py build/rproxy-asan ||
    { echo "not ok - tests/package/daemon.py exited non-zero"; fails=$((fails + 1)); }
for x in arm64:qemu-aarch64:aarch64-linux-gnu armhf:qemu-arm:arm-linux-gnueabihf; do
    a=${x%%:*} q=${x#*:} q=${q%%:*} triplet=${x##*:}
    { python3 tests/package/daemon.py --only cross "build/cross/$a/usr/sbin/rproxy" \
        "$q" -L "/usr/$triplet" 2>&1; echo $? >"$TMP/cross.rc"; } | sed "s/ - cross:/ - $a ($q):/"
    [ "$(cat "$TMP/cross.rc")" = 0 ] || { echo "not ok - $a under $q: exit $(cat "$TMP/cross.rc")"; fails=$((fails + 1)); }
done
[ "$fails" = 0 ]
