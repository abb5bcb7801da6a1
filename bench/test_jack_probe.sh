#!/usr/bin/env bash
# ctest Bench.JackProbe.TimesBothClients: bench/jack_callback_probe.cpp preloaded into Debian's
# jack_simple_client and into sluice-play on a jackd of this test's own (dummy driver) times
# every callback of each, and bench/jack_probe_summary.py pools them; a line that is not the
# probe's is refused in one line.
#   test_jack_probe.sh PROBE.so SLUICE-PLAY SUMMARY.py
set -euo pipefail
probe=$1 play=$2 summary=$3
source "$(dirname "$0")/own_jackd.sh"
own_jackd probe-test
# --foreground: one SIGTERM to the client alone. Without it timeout also signals its process
# group, a second SIGTERM lands on the client's JACK thread while the first handler closes the
# client, and both handlers deadlock inside jack_client_close (seen under load, in CI).
timeout --foreground -k 5 2 env LD_PRELOAD="$probe" SLUICE_JACK_PROBE="$dir/plain.jsonl" jack_simple_client > /dev/null 2>&1 || true
LD_PRELOAD="$probe" SLUICE_JACK_PROBE="$dir/sluice.jsonl" "$play" -q --duration 2 'tone ! jacksink client=sluice connect=none'
# 2 s at 750 cycles a second: well over 500 each, every one timed.
read -r plain_cycles _ < <(python3 "$summary" jack_simple_client "$dir/plain.jsonl")
read -r sluice_cycles _ _ _ _ _ _ _ dmax _ < <(python3 "$summary" sluice "$dir/sluice.jsonl")
echo "cycles: plain client $plain_cycles, Sluice $sluice_cycles; Sluice's longest callback $dmax us"
# (One test a line: under set -e a failing test before && would not stop the script.)
[ "$plain_cycles" -gt 500 ] || { echo "the plain client's callbacks were not timed" >&2; exit 1; }
[ "$sluice_cycles" -gt 500 ] || { echo "Sluice's callbacks were not timed" >&2; exit 1; }
# Only the named client's lines count.
[ "$(python3 "$summary" nobody "$dir/plain.jsonl")" = "- - - - - - - - - -" ]
echo 'not json' > "$dir/bad.jsonl"
if python3 "$summary" sluice "$dir/bad.jsonl" 2> "$dir/err"; then exit 1; fi
[ "$(wc -l < "$dir/err")" -eq 1 ] || { cat "$dir/err" >&2; exit 1; }
grep -q "bad.jsonl:1: not a line of jack_callback_probe" "$dir/err"
