#!/bin/sh
# scripts/fetch-deps.sh -- fetch the SOURCE of lwIP and BearSSL from Debian into deps/.
#
#   sh scripts/fetch-deps.sh            both (deps/lwip, deps/bearssl)
#   sh scripts/fetch-deps.sh lwip       only lwIP
#
# Third-party sources are never committed: deps/ is in .gitignore.  Each
# package is unpacked with dpkg-source into deps/<name>-<version>/ and a
# stable symlink deps/<name> points at it.  When deps/<name> already exists
# nothing is done, so a second run is quick.  `apt-get source` needs a
# deb-src entry: as root the script enables "Types: deb deb-src" in the
# deb822 file (/etc/apt/sources.list.d/debian.sources) or adds a deb-src
# line to sources.list, then runs one `apt-get update`.
set -eu
cd "$(dirname "$0")/.."
DEPS=deps
want=${*:-"lwip bearssl"}

todo=
for pkg in $want; do
    [ -e "$DEPS/$pkg/.fetched" ] || todo="$todo $pkg"
done
[ -z "$todo" ] && exit 0

have_src() { apt-cache showsrc "$1" 2>/dev/null | grep -q '^Package:'; }

need_update=0
for pkg in $todo; do have_src "$pkg" || need_update=1; done
if [ $need_update = 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "fetch-deps: no deb-src entry for:$todo; as root run: sh $0" >&2
        exit 1
    fi
    f=/etc/apt/sources.list.d/debian.sources
    if [ -f $f ] && grep -q '^Types: deb$' $f; then
        echo "fetch-deps: enabling deb-src in $f" >&2
        sed -i 's/^Types: deb$/Types: deb deb-src/' $f
    elif [ -f /etc/apt/sources.list ] && ! grep -q '^deb-src' /etc/apt/sources.list; then
        echo "fetch-deps: adding deb-src lines to /etc/apt/sources.list" >&2
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >>/etc/apt/sources.list
    fi
    apt-get update -q >&2
fi
command -v dpkg-source >/dev/null 2>&1 || {
    [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpkg-dev >&2
}

mkdir -p "$DEPS/.dl"
for pkg in $todo; do
    echo "fetch-deps: $pkg" >&2
    (cd "$DEPS/.dl" && apt-get source --download-only -q "$pkg" >&2)
    dsc=$(ls -t "$DEPS/.dl/${pkg}_"*.dsc | head -1)
    ver=$(basename "$dsc" .dsc | sed "s/^${pkg}_//")
    dir="$DEPS/$pkg-$ver"
    rm -rf "$dir"
    dpkg-source --no-check -x "$dsc" "$dir" >&2
    rm -f "$DEPS/${pkg}_"*.orig.tar.* # dpkg-source leaves a copy next to $dir
    rm -f "$DEPS/$pkg"
    ln -s "$pkg-$ver" "$DEPS/$pkg"
    : >"$dir/.fetched"
done
