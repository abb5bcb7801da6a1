#!/usr/bin/env bash
# Real-time determinism under load: a 48 kHz, 64-frame (1.33 ms period) audio graph plus a 30 fps
# 640x360 video branch, presented on the clock for SECONDS while sluice-stress loads both cores;
# once with the streaming threads at SCHED_FIFO (where the OS permits it) and once without.
# Reports late samples, deadline misses (later than one buffer period), p99.9 and max lateness,
# plots the distributions, then times 100 stops of a fully blocked 4-source graph under the same
# load.
#
#
# Then (issue #14) two side-by-side comparisons with the reference tools, in the same run:
#   tail: `sluice-play --realtime --rt-priority 80 'tone frames=64 ! nullsink'` and
#         `cyclictest -t1 -p80 -i1333` together for TAIL_SECONDS under `stress-ng --cpu 2
#         --cpu-load 70`, TAIL_RUNS times: Sluice's presentation lateness against cyclictest's
#         wake-up latency (the floor any SCHED_FIFO thread on this machine sees).
#   jack: `tone ! jacksink` and jack_simple_client on `jackd -d dummy -p 64` (48 kHz, 1.33 ms
#         periods) for JACK_SECONDS a run, idle and under sluice-stress, JACK_ROUNDS rounds of
#         each alone and both on one server: the cycles each client missed, as jackd reports
#         them, and ours (ring empty); then each client's callback timing, pooled over the
#         rounds: how late each callback began against the one before, and how long it ran,
#         measured the same way in both by bench/jack_callback_probe.cpp (preloaded into each).
#   roundtrip: the round trip through JACK in periods, measured by jack_iodelay (its signal out,
#         through a relay, back in): Sluice's `jacksrc ! jacksink` at ring latencies of two,
#         four and 32 periods (the default, 2048 frames), against jack_thru (a plain client that
#         copies its inputs to its outputs inside the callback), on `jackd -d dummy -p 64`;
#         then app to app: a click pushed into `appsrc ! jacksink`, back through `jacksrc !
#         appsink` (sluice-bench-jack-roundtrip), at the same ring latencies.
#
#   bench/realtime_soak.sh            # 60 s per run
#   SECONDS_PER_RUN=10 bench/realtime_soak.sh
#   PARTS="tail jack roundtrip" TAIL_SECONDS=20 JACK_SECONDS=30 bench/realtime_soak.sh
#   PARTS=tail TAIL_CPU=1 bench/realtime_soak.sh   # both pinned to CPU 1: the same stalls hit both
#   PARTS=jack JACK_WAYS=alone JACK_LOADS=idle JACK_ROUNDS=20 JACK_SECONDS=20 bench/realtime_soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
run_for=${SECONDS_PER_RUN:-60}
parts=${PARTS:-soak tail jack roundtrip}
tail_for=${TAIL_SECONDS:-20}
tail_runs=${TAIL_RUNS:-3}
tail_cpu=${TAIL_CPU:-}  # a CPU to pin both to (then a stall of that CPU hits both); unset: unpinned
tail_files=tail-${tail_cpu:+cpu$tail_cpu-}  # results/tail-{sluice,cyclictest}-N or tail-cpuC-...
jack_for=${JACK_SECONDS:-60}  # the issue's 60 s (session 15's figures in bench/README.md; earlier ones are of 30 s and 20 s runs)
jack_rounds=${JACK_ROUNDS:-2}
jack_ways=${JACK_WAYS:-alone both apart}  # which of the three ways each round runs
jack_loads=${JACK_LOADS:-idle loaded}
rt_seconds=${ROUNDTRIP_SECONDS:-10}  # each app-to-app row of the roundtrip part
build=${BUILD:-build-release}  # BUILD=build measures the README's RelWithDebInfo build as it stands
out=bench/results
mkdir -p "$out"
[ -z "${BUILD:-}" ] && flock /tmp/sluice-build.lock cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF >/dev/null
flock /tmp/sluice-build.lock cmake --build "$build" -j2 --target sluice-play sluice-stress sluice-graph-stop sluice-jack-probe >/dev/null

graph='tone frames=64 rate=48000 channels=2 ! nullsink name=audio  videotest width=640 height=360 fps=30 ! nullsink name=video'
load() { exec "$build/demos/sluice-stress" --scenario contend --threads 2 --duration "$1" --no-check -q >/dev/null; }

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

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
if [[ " $parts " == *" soak "* ]]; then
echo "load: sluice-stress contend, 2 threads; ${run_for} s per run"
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
fi

if [[ " $parts " == *" tail "* ]]; then
  command -v cyclictest >/dev/null && command -v stress-ng >/dev/null || { echo "tail: needs cyclictest (rt-tests) and stress-ng" >&2; exit 2; }
  echo
  pinning=${tail_cpu:+both on CPU $tail_cpu}
  echo "Tail: sluice-play and cyclictest side by side, SCHED_FIFO 80, 1333 us period, ${tail_for} s, stress-ng --cpu 2 --cpu-load 70, ${pinning:-unpinned}"
  echo
  # Like with like: cyclictest skips the periods a late wake-up overran (its next deadline is
  # the first one still ahead), where a render presents every sample, each as late as it is:
  # after a 12 ms stall, cyclictest records one 12 ms sample and a render nine (12, 10.7, 9.3,
  # ... ms). "As a render" counts cyclictest's skipped periods the way the render counts them (a
  # wake-up L late also stands for L-T, L-2T, ... > 0), so both columns count every period.
  echo "| run | Sluice p99.9 | Sluice max | Sluice misses (>1.33 ms) | cyclictest as a render: p99.9 | max | misses | cyclictest raw: p99.9 | misses |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for run in $(seq 1 "$tail_runs"); do
    stress-ng --cpu 2 --cpu-load 70 --timeout $((tail_for + 4))s -q &
    stressor=$!
    sleep 1
    cyclictest -t1 -p80 -i1333 -D"${tail_for}s" -q -m -h 100000 ${tail_cpu:+-a $tail_cpu} > "$out/${tail_files}cyclictest-$run.txt" &
    cyclic=$!
    ${tail_cpu:+taskset -c $tail_cpu} "$build/demos/sluice-play" -q --realtime --rt-priority 80 --duration "$tail_for" --stats-json "$out/${tail_files}sluice-$run.json" \
      'tone frames=64 rate=48000 ! nullsink name=audio' 2> "$out/${tail_files}sluice-$run.log" || true
    wait "$cyclic" || true
    wait "$stressor" 2>/dev/null || true
  done
  python3 - "$out/$tail_files" "$tail_runs" <<'PY'
import json, os, sys
out, runs, period_us = sys.argv[1], int(sys.argv[2]), 1333
def bucket(ns):  # the upper bound of ns's bucket in Sluice's lateness histogram (LogBuckets<4>)
    if ns < 16: return ns
    shift = ns.bit_length() - 5
    return (((ns >> shift) + 1) << shift) - 1
def sluice(run):  # every presented sample's lateness (bucket bounds, ns); exact misses and max
    path = f"{out}sluice-{run}.json"
    if not os.path.exists(path): return [], 0, 0
    n = json.load(open(path))["nodes"]["audio"]
    values = sorted(ns for ns, count in n["lateness_histogram_ns"] for _ in range(count))
    return values, n["deadline_misses"], n["max_lateness_ms"] * 1e6
def cyclictest(run, as_render):  # every wake-up latency in Sluice's buckets (ns); exact misses and max
    values, exact, path = [], [], f"{out}cyclictest-{run}.txt"
    for line in open(path) if os.path.exists(path) else []:
        if line[:1].isdigit():
            us, count = map(int, line.split()[:2])
            for _ in range(count):
                late = us
                while late > 0 or late == us:
                    exact.append(late)
                    if not as_render: break
                    late -= period_us
    return sorted(bucket(us * 1000) for us in exact), sum(1 for us in exact if us > period_us), max(exact, default=0) * 1000
def p999(v): return v[min(len(v) - 1, int(0.999 * len(v)))] if v else 0
every = {k: [[], 0, 0] for k in "src"}
def row(name, s, r, c):
    us = lambda ns: f"{ns / 1000:.0f} us"
    print(f"| {name} | {us(p999(s[0]))} | {us(s[2])} | {s[1]} of {len(s[0])} | {us(p999(r[0]))} | {us(r[2])} | "
          f"{r[1]} of {len(r[0])} | {us(p999(c[0]))} | {c[1]} of {len(c[0])} |")
for run in range(1, runs + 1):
    got = sluice(run), cyclictest(run, True), cyclictest(run, False)
    for k, (v, m, mx) in zip("src", got):
        every[k][0] += v; every[k][1] += m; every[k][2] = max(every[k][2], mx)
    row(str(run), *got)
for k in "src": every[k][0].sort()
row("all", every["s"], every["r"], every["c"])
# All runs together, as stats files bench/plot_lateness.py draws (values in ns).
for k, node in (("s", "Sluice render"), ("r", "cyclictest as a render"), ("c", "cyclictest wake-ups")):
    counts = {}
    for ns in every[k][0]: counts[ns] = counts.get(ns, 0) + 1
    json.dump({"nodes": {node: {"lateness_histogram_ns": sorted(counts.items())}}}, open(f"{out}all-{k}.json", "w"))
PY
  python3 bench/plot_lateness.py "$out/${tail_files}lateness.svg" "all runs=$out/${tail_files}all-s.json" \
    "all runs=$out/${tail_files}all-r.json" "all runs=$out/${tail_files}all-c.json"
  echo
  echo "plot: $out/${tail_files}lateness.svg"
fi

if [[ " $parts " == *" jack "* ]]; then
  command -v jackd >/dev/null && command -v jack_simple_client >/dev/null || { echo "jack: needs jackd2 (jackd, jack_simple_client)" >&2; exit 2; }
  server=sluice-bench
  echo
  echo "JACK: tone ! jacksink and jack_simple_client on jackd -d dummy -r 48000 -p 64, ${jack_for} s a run, ${jack_rounds} rounds"
  echo
  # jackd names the clients it found unfinished at a cycle's end ("client = X was not finished").
  # On a VM whose dummy driver itself misses cycles, two clients of one server share those
  # misses by their place in the cycle (the later one is more often the one caught), so each
  # client also runs alone against its own server, alternating: its own misses, like for like.
  # Each round runs: plain alone, Sluice alone, both (the plain client first in odd rounds, Sluice first in even).
  # A third way, the same time for both: each client alone on a server of its own, the two
  # servers and clients running at once (which server the plain client gets alternates). Runs
  # one after another meet different moments of a shared host (one client's count for a run
  # spreads from 12 to 300 here); at once, each meets the same ones.
  : > "$out/jack-rounds.md"
  table() { echo "$1" | tee -a "$out/jack-rounds.md"; }  # the table, also in results/jack-rounds.md
  table "| load | round | plain client alone | Sluice alone (ring xruns) | both: plain client | both: Sluice (ring xruns) | started first | at once, own servers: plain client | at once, own servers: Sluice (ring xruns) |"
  table "|---|---|---|---|---|---|---|---|---|"
  probe=$(cd "$build" && pwd)/bench/libsluice-jack-probe.so
  rm -f "$out"/jack-probe-*.jsonl
  jack_run() {  # name load clients... (plain | sluice | plain@SERVER | sluice@SERVER): prints "plain-misses sluice-misses sluice-ring-xruns"
    # Each client's callback timing goes to $out/jack-probe-NAME-CLIENT.jsonl.
    local name=$1 mode=$2; shift 2
    local servers=() jackd_pids=() loader= pids=() client s
    for client in "$@"; do s=${client#*@}; [ "$s" = "$client" ] && s=$server; [[ " ${servers[*]} " == *" $s "* ]] || servers+=("$s"); done
    for s in "${servers[@]}"; do
      JACK_NO_AUDIO_RESERVATION=1 jackd -n "$s" -d dummy -r 48000 -p 64 > "$out/jack-$name-$s.log" 2>&1 & jackd_pids+=($!)
    done
    for s in "${servers[@]}"; do for _ in $(seq 100); do JACK_DEFAULT_SERVER=$s jack_lsp > /dev/null 2>&1 && break; sleep 0.1; done; done
    if [ "$mode" = loaded ]; then load $((jack_for + 5)) & loader=$!; fi
    rm -f "$out/jack-$name.json"
    for client in "$@"; do
      s=${client#*@}; [ "$s" = "$client" ] && s=$server
      if [ "${client%@*}" = plain ]; then
        JACK_DEFAULT_SERVER=$s timeout --foreground -k 5 $((jack_for + 2)) env LD_PRELOAD="$probe" SLUICE_JACK_PROBE="$out/jack-probe-$name-plain.jsonl" \
          jack_simple_client > /dev/null 2>&1 & pids+=($!)
      else
        JACK_DEFAULT_SERVER=$s LD_PRELOAD="$probe" SLUICE_JACK_PROBE="$out/jack-probe-$name-sluice.jsonl" "$build/demos/sluice-play" -q --realtime --rt-priority 80 --duration "$jack_for" \
          --stats-json "$out/jack-$name.json" 'tone ! jacksink client=sluice connect=none' 2> "$out/jack-sluice-$name.log" & pids+=($!)
      fi
      [ ${#servers[@]} = 1 ] && sleep 0.5  # on one server, one after the other; on two, together
    done
    wait "${pids[@]}" 2>/dev/null || true
    [ -n "$loader" ] && { kill "$loader" 2>/dev/null || true; wait "$loader" 2>/dev/null || true; }
    kill -TERM "${jackd_pids[@]}" 2>/dev/null || true; wait "${jackd_pids[@]}" 2>/dev/null || true
    for s in "${servers[@]}"; do cat "$out/jack-$name-$s.log" && rm -f "$out/jack-$name-$s.log"; done > "$out/jack-$name.log" 2>/dev/null || true
    python3 - "$out/jack-$name.log" "$out/jack-$name.json" <<'PY' || echo "- - -"
import json, os, re, sys
log = open(sys.argv[1]).read()
missed = lambda name: len(re.findall(r"client = " + re.escape(name) + r" was not finished", log))
ring = json.load(open(sys.argv[2]))["nodes"]["jacksink0"]["xruns"] if os.path.exists(sys.argv[2]) else "-"
print(missed("jack_simple_client"), missed("sluice"), ring)
PY
  }
  for load_mode in $jack_loads; do
    declare -A total=()
    for round in $(seq 1 "$jack_rounds"); do
      p=- s=- sx=- bp=- bs=- bx=- ap=- as=- ax=- first=-
      if [[ " $jack_ways " == *" alone "* ]]; then  # which goes first alternates too
        if [ $((round % 2)) = 1 ]; then
          read -r p _ _ < <(jack_run "$load_mode-$round-plain" "$load_mode" plain)
          read -r _ s sx < <(jack_run "$load_mode-$round-sluice" "$load_mode" sluice)
        else
          read -r _ s sx < <(jack_run "$load_mode-$round-sluice" "$load_mode" sluice)
          read -r p _ _ < <(jack_run "$load_mode-$round-plain" "$load_mode" plain)
        fi
      fi
      if [[ " $jack_ways " == *" both "* ]]; then
        if [ $((round % 2)) = 1 ]; then first="plain client"; order=(plain sluice); else first=Sluice; order=(sluice plain); fi
        read -r bp bs bx < <(jack_run "$load_mode-$round-both" "$load_mode" "${order[@]}")
      fi
      if [[ " $jack_ways " == *" apart "* ]]; then
        if [ $((round % 2)) = 1 ]; then apart=(plain@$server-a sluice@$server-b); else apart=(sluice@$server-a plain@$server-b); fi
        read -r ap as ax < <(jack_run "$load_mode-$round-apart" "$load_mode" "${apart[@]}")
      fi
      table "| $load_mode | $round | $p | $s ($sx) | $bp | $bs ($bx) | $first | $ap | $as ($ax) |"
      for k in p s bp bs ap as; do if [[ ${!k} =~ ^[0-9]+$ ]]; then total[$k]=$(( ${total[$k]:-0} + ${!k} )); fi; done
    done
    table "| $load_mode | all | ${total[p]:--} | ${total[s]:--} | ${total[bp]:--} | ${total[bs]:--} | | ${total[ap]:--} | ${total[as]:--} |"
    unset total
  done
  table ""
  table "Callback timing, pooled over the rounds (bench/jack_callback_probe.cpp in both clients; us): late = how much later than a period after the previous callback each began; duration = how long it ran; overruns = callbacks longer than a period; >=N: N or more (the probe's histogram ends there)."
  table ""
  table "| load | way | client | cycles | late p50 | p99 | p99.9 | max | duration p50 | p99 | p99.9 | max | overruns |"
  table "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  shopt -s nullglob
  for load_mode in $jack_loads; do
    for way in alone both apart; do
      [[ " $jack_ways " == *" $way "* ]] || continue
      for client in plain sluice; do
        if [ "$way" = alone ]; then files=("$out"/jack-probe-"$load_mode"-*-"$client"-"$client".jsonl)
        else files=("$out"/jack-probe-"$load_mode"-*-"$way"-"$client".jsonl); fi
        if [ "$client" = plain ]; then jack_name=jack_simple_client; label="plain client"; else jack_name=sluice; label=Sluice; fi
        read -r c l50 l99 l999 lmax d50 d99 d999 dmax over < <(python3 bench/jack_probe_summary.py "$jack_name" /dev/null "${files[@]}" || echo "- - - - - - - - - -")
        table "| $load_mode | $way | $label | $c | $l50 | $l99 | $l999 | $lmax | $d50 | $d99 | $d999 | $dmax | $over |"
      done
    done
  done
  shopt -u nullglob
fi

if [[ " $parts " == *" roundtrip "* ]]; then
  command -v jack_iodelay >/dev/null && command -v jack_thru >/dev/null || { echo "roundtrip: needs jackd2 (jack_iodelay, jack_thru)" >&2; exit 2; }
  server=sluice-bench-rt
  echo
  echo "JACK round trip (jack_iodelay out -> relay -> jack_iodelay in) on jackd -d dummy -r 48000 -p 64"
  echo
  echo "| relay | ring latency | round trip | periods of 64 | ms | ring xruns (in / out) | JACK xruns in the run |"
  echo "|---|---:|---:|---:|---:|---|---:|"
  JACK_NO_AUDIO_RESERVATION=1 jackd -n "$server" -d dummy -r 48000 -p 64 > "$out/jack-roundtrip.log" 2>&1 &
  jackd_pid=$!
  export JACK_DEFAULT_SERVER=$server
  for _ in $(seq 100); do jack_lsp > /dev/null 2>&1 && break; sleep 0.1; done
  # Appending, so that emptying the file between rows leaves no hole of NULs at its start.
  : > "$out/jack-iodelay.log"
  stdbuf -oL jack_iodelay >> "$out/jack-iodelay.log" 2>&1 &
  iodelay=$!
  trap 'kill "$iodelay" "$jackd_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do jack_lsp | grep -q jack_delay:in && break; sleep 0.1; done
  # jack_iodelay prints its latest measurement every cycle or so: the last one after 3 s settled.
  measured() { sleep 3; tr '\r' '\n' < "$out/jack-iodelay.log" | sed -n 's/^ *\([0-9.]*\) frames .*total roundtrip latency.*/\1/p' | tail -1 | grep . || echo 0; }
  row() {  # label latency frames xruns jack-xruns
    awk -v l="$1" -v r="$2" -v f="$3" -v x="$4" -v j="$5" 'BEGIN { printf "| %s | %s | %d frames | %.1f | %.2f | %s | %s |\n", l, r, f, f / 64, f / 48, x, j }'
  }
  jack_thru > /dev/null 2>&1 &
  thru=$!
  for _ in $(seq 50); do jack_lsp | grep -q jack_thru:input_1 && break; sleep 0.1; done
  jack_connect jack_delay:out jack_thru:input_1 && jack_connect jack_thru:output_1 jack_delay:in
  : > "$out/jack-iodelay.log"
  row jack_thru - "$(measured)" - -
  kill "$thru"; wait "$thru" 2>/dev/null || true
  for latency in 128 256 2048; do
    "$build/demos/sluice-play" -q --duration 6 --stats-json "$out/jack-roundtrip-$latency.json" \
      "jacksrc client=relay channels=1 latency=$latency connect=jack_delay:out ! jacksink client=relayout channels=1 latency=$latency connect=jack_delay:in" \
      2> "$out/jack-roundtrip-$latency.log" &
    relay=$!
    sleep 1
    : > "$out/jack-iodelay.log"
    frames=$(measured)
    wait "$relay" || true
    xruns=$(python3 -c "import json,sys; n=json.load(open(sys.argv[1]))['nodes']; print(f\"{n['jacksrc0']['xruns']} / {n['jacksink0']['xruns']}\")" "$out/jack-roundtrip-$latency.json")
    jack_xruns=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['nodes']['jacksink0']['jack_xruns'])" "$out/jack-roundtrip-$latency.json")
    row "sluice jacksrc ! jacksink" "$latency" "$frames" "$xruns" "$jack_xruns"
  done
  kill "$iodelay" 2>/dev/null || true; wait "$iodelay" 2>/dev/null || true
  # The round trip as an app sees it: a click pushed into appsrc ! jacksink, back through
  # jacksrc ! appsink (both rings and both app queues on the way), beside the same app code on
  # GStreamer's jackaudiosink and jackaudiosrc with the same buffering, and each side of one with
  # the other's, which tells whose part of the trip is longer (see jack_roundtrip.cpp).
  echo
  echo "App to app through JACK (appsrc ! sink -> JACK -> src ! appsink, a click every 128 ms, ${rt_seconds} s a row)"
  echo
  echo "| path | ring latency (each way) | clicks back / sent | median round trip | ms | min - max | ring xruns (jacksink / jacksrc) | JACK xruns from the link on |"
  echo "|---|---:|---:|---:|---:|---|---|---:|"
  # Built only here: the target exists where GStreamer's app library was found at configure time.
  if flock /tmp/sluice-build.lock cmake --build "$build" -j2 --target sluice-bench-jack-roundtrip >/dev/null; then
    for latency in 128 256 2048; do
      for who in sluice gstreamer sluice-gstreamer gstreamer-sluice; do
        if line=$("$build/bench/sluice-bench-jack-roundtrip" "$who" "$latency" "$rt_seconds"); then
          echo "$line" | awk '{ printf "| %s | %s | %s / %s | %s periods | %s | %s - %s periods | %s | %s |\n", $1, substr($2, 9), $6, $4, $10, substr($12, 2), $15, $17, $19, $21 }'
        else
          echo "| $who | $latency | failed: ${line:-no line} | | | | | |"
        fi
      done
    done | tee "$out/jack-app-roundtrip.md"
  else
    echo "(no sluice-bench-jack-roundtrip: it needs libgstreamer-plugins-base1.0-dev at configure time)"
  fi
  kill -TERM "$jackd_pid"; wait "$jackd_pid" 2>/dev/null || true
  trap - EXIT
  unset JACK_DEFAULT_SERVER
fi
