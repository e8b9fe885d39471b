#!/bin/sh
# tests/soak-short.sh -- the CI soak: bench/soak.sh cut to ~30 s (60,000 requests at 200
# connections), TAP output ("ok N - soak: ..."), exit 1 on failure.  Override with
# SOAK_REQUESTS / SOAK_CONNS / RPROXY / DEVSIM like bench/soak.sh.
cd "$(dirname "$0")/.." || exit 1
SOAK_REQUESTS=${SOAK_REQUESTS:-60000} exec sh bench/soak.sh
