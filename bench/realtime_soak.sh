#!/usr/bin/env bash
# Real-time determinism under load: a 48 kHz, 64-frame (1.33 ms period) audio graph plus a 30 fps
# 640x360 video branch, presented on the clock for SECONDS while sluice-stress loads both cores;
# once with the streaming threads at SCHED_FIFO (where the OS permits it) and once without.
# Reports late samples, deadline misses (later than one buffer period), p99.9 and max lateness,
# plots the distributions, then times 100 stops of a fully blocked 4-source graph under the same
# load.
#
#   bench/realtime_soak.sh            # 60 s per run
#   SECONDS_PER_RUN=10 bench/realtime_soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
run_for=${SECONDS_PER_RUN:-60}
build=build-release
out=bench/results
mkdir -p "$out"
flock /tmp/sluice-build.lock cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF >/dev/null
flock /tmp/sluice-build.lock cmake --build "$build" -j2 --target sluice-play sluice-stress sluice-graph-stop >/dev/null

graph='tone frames=64 rate=48000 channels=2 ! nullsink name=audio  videotest width=640 height=360 fps=30 ! nullsink name=video'
load() { "$build/demos/sluice-stress" --scenario contend --threads 2 --duration "$1" --no-check -q >/dev/null; }

summary() {  # label stats.json
  python3 - "$1" "$2" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
for node in ("audio", "video"):
    n = s["nodes"][node]
    print(f"| {label} | {node} | {n['samples_in']} | {n['late']} | {n['deadline_misses']} | "
          f"{n['lateness_p999_ms']:.3f} ms | {n['max_lateness_ms']:.3f} ms |")
PY
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); load: sluice-stress contend, 2 threads; ${run_for} s per run"
echo
echo "| run | render | samples | late (>1 ms) | deadline misses | p99.9 lateness | max lateness |"
echo "|---|---|---|---|---|---|---|"
for mode in fifo normal; do
  load $((run_for + 5)) &
  loader=$!
  sleep 1
  extra=()
  [ "$mode" = fifo ] && extra=(--rt-priority 80)
  "$build/demos/sluice-play" -q --realtime "${extra[@]}" --duration "$run_for" --stats-json "$out/soak-$mode.json" "$graph" \
    2> "$out/soak-$mode.log" || true
  kill "$loader" 2>/dev/null || true
  wait "$loader" 2>/dev/null || true
  label=$mode
  [ "$mode" = fifo ] && grep -q "SCHED_FIFO" "$out/soak-$mode.log" && label="fifo refused"
  summary "$label" "$out/soak-$mode.json"
done
python3 bench/plot_lateness.py "$out/soak-lateness.svg" "SCHED_FIFO=$out/soak-fifo.json" "normal=$out/soak-normal.json"
echo
echo "plot: $out/soak-lateness.svg"
load 60 &
loader=$!
sleep 1
echo "under load: $("$build/bench/sluice-graph-stop" 100 4)"
kill "$loader" 2>/dev/null || true
wait "$loader" 2>/dev/null || true
