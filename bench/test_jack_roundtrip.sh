#!/usr/bin/env bash
# ctest Bench.JackRoundTrip.ClicksComeBackInOrder: sluice-bench-jack-roundtrip on a jackd of this
# test's own (dummy driver, 64-frame periods): the clicks an app pushes into appsrc ! jacksink
# come back through jacksrc ! appsink numbered in order, none twice, none mistaken, after at least one period
# (the server moves them once a cycle) and no later than both rings, both app queues and a
# margin for a loaded machine allow.
#   test_jack_roundtrip.sh SLUICE-BENCH-JACK-ROUNDTRIP
set -euo pipefail
bench=$1
source "$(dirname "$0")/own_jackd.sh"
own_jackd roundtrip-test
rc=0
line=$("$bench" sluice 256 3) || rc=$?
echo "$line"
read -r _ _ _ clicks _ found _ wrong _ median _ < <(echo "$line")
order=$(echo "$line" | awk '{ for (i = 1; i < NF; ++i) if ($i == "out-of-order") print $(i + 1) }')
[ "$order" = 0 ] || { echo "${order:-?} clicks came back out of order (or twice)" >&2; exit 1; }
# 3 s at a click per 128 ms: 23; all but those still in flight at the end come back.
[ "$found" -ge 15 ] || { echo "only $found of $clicks clicks came back" >&2; exit 1; }
[ "$wrong" -eq 0 ] || { echo "$wrong clicks came back with a number never sent" >&2; exit 1; }
[ "$rc" -eq 0 ] || { echo "sluice-bench-jack-roundtrip exited $rc" >&2; exit 1; }
# Rings of 256 frames (4 periods) each way, app queues of 2 and 4 buffers: about 14 periods
# full; 40 allows a loaded machine's late wake-ups without letting a stuck queue pass.
awk -v m="$median" 'BEGIN { exit !(m >= 1 && m <= 40) }' || { echo "median round trip $median periods: outside 1..40" >&2; exit 1; }
