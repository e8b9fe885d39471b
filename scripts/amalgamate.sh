#!/bin/sh
# scripts/amalgamate.sh -- rproxy.c is generated: the sections in src/,
# concatenated in file-name order with a blank line between (Mongoose's rule).  Edit src/, then
#   scripts/amalgamate.sh > rproxy.c      (make does this)
#   scripts/amalgamate.sh --check         (silent when rproxy.c matches)
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
    if ! sh scripts/amalgamate.sh | cmp -s - rproxy.c; then
        echo "rproxy.c does not match src/: run 'scripts/amalgamate.sh > rproxy.c' and commit" >&2
        exit 1
    fi
    exit 0
fi
first=1
for f in src/[0-9][0-9]-*.c; do
    [ $first = 1 ] || echo
    first=0
    cat "$f"
done
