#!/usr/bin/env bash
# Pictures on time when a movie plays: `sluice-play FILE` (each branch behind a queue, a thread
# of its own) against the same nodes on avsrc's one streaming thread, in one run, alternating.
# The movie's sound goes to alsa-lib's JACK plugin on a jackd of the bench's own (dummy driver,
# 48 kHz, 256-frame periods), which is the graph's clock; the pictures to a window on an Xvfb of
# its own. Per run, from --stats-json: pictures shown, those more than 1 ms late, the 99.9th
# percentile and the worst lateness, avsrc's copies, alsasink's xruns. Files are made at the start
# with the ffmpeg CLI:
#   720p H.264 (libx264, 3 B-frames, frame threads) + AAC, 15 s at 30 fps
#   360p FFV1 + FLAC, 15 s at 25 fps (a decoder that holds nothing back)
# Built as the README builds (RelWithDebInfo, -O2), into build/ (BUILD=dir for another).
#
#   bench/av_sync.sh            # prints a table; bench/results/latest-av-sync.md keeps it
#   REPS=6 bench/av_sync.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD:-$root/build}
reps=${REPS:-3}
player=$build/demos/sluice-play
[ -x "$player" ] || { echo "av_sync: no $player; build first (see README)" >&2; exit 2; }
for tool in jackd Xvfb ffmpeg python3; do
  command -v "$tool" > /dev/null || { echo "av_sync: $tool is missing (bash .ci/install-deps)" >&2; exit 2; }
done

. "$here/own_jackd.sh"
own_jackd_period() {  # as own_jackd, with 256-frame periods: a desktop's, where a movie plays
  dir=$(mktemp -d)
  local server=avsync-$$
  JACK_NO_AUDIO_RESERVATION=1 jackd -n "$server" -d dummy -r 48000 -p 256 > "$dir/jackd.log" 2>&1 &
  jackd=$!
  export JACK_DEFAULT_SERVER=$server
  for _ in $(seq 100); do jack_lsp > /dev/null 2>&1 && break; sleep 0.1; done
}
own_jackd_period
display=:$((100 + $$ % 800))
Xvfb "$display" -screen 0 1920x1080x24 > "$dir/xvfb.log" 2>&1 &
xvfb=$!
trap 'kill "$jackd" "$xvfb" 2>/dev/null; wait "$jackd" "$xvfb" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
export DISPLAY=$display
cat > "$dir/asound.conf" <<'EOF'
pcm.!default { type plug slave.pcm { type jack playback_ports { 0 system:playback_1 1 system:playback_2 } } }
EOF
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$dir/asound.conf

echo "av_sync: making the movies" >&2
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 15 \
  -c:v libx264 -preset fast -bf 3 -c:a aac "$dir/h264.mp4"
ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 -t 15 \
  -c:v ffv1 -c:a flac "$dir/ffv1.mkv"

# One line per run: shown late p999_ms max_ms copies xruns
summary() {
  python3 - "$1" <<'EOF'
import json, sys
nodes = json.load(open(sys.argv[1]))["nodes"]
w = nodes["window"]
xruns = sum(n.get("xruns", 0) for n in nodes.values())
print(w.get("shown", w["samples_in"]), w["late"], f'{w["lateness_p999_ms"]:.1f}', f'{w["max_lateness_ms"]:.1f}',
      nodes["file"]["copies"], xruns)
EOF
}

run() {  # label movie args...
  local label=$1 movie=$2
  shift 2
  timeout 60 "$player" -q --stats-json "$dir/stats.json" "$@" > "$dir/run.log" 2>&1 ||
    { echo "av_sync: $label failed on $movie:" >&2; cat "$dir/run.log" >&2; exit 1; }
  echo "$label $(basename "$movie") $(summary "$dir/stats.json")"
}

: > "$dir/runs"
for ((i = 1; i <= reps; i++)); do
  for movie in "$dir/h264.mp4" "$dir/ffv1.mkv"; do
    # The file player's own pipeline, and the same nodes without its queues (all on avsrc's
    # thread), in turn: each goes first every other round.
    one_thread=$(timeout 60 "$player" -v --duration 0.2 "$movie" 2>&1 | sed -n 's/^sluice-play: the pipeline: //p' |
                 sed 's/queue [^!]*! //g')
    [ -n "$one_thread" ] || { echo "av_sync: sluice-play -v did not print its pipeline for $movie" >&2; exit 1; }
    if ((i % 2)); then
      run queues "$movie" "$movie" >> "$dir/runs"
      run one-thread "$movie" --realtime "$one_thread" >> "$dir/runs"
    else
      run one-thread "$movie" --realtime "$one_thread" >> "$dir/runs"
      run queues "$movie" "$movie" >> "$dir/runs"
    fi
    echo "av_sync: round $i of $reps, $(basename "$movie") done" >&2
  done
done

table=$(python3 - "$dir/runs" "$reps" "$(git -C "$root" rev-parse --short HEAD)" <<'EOF'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
reps, commit = sys.argv[2], sys.argv[3]
print(f"{reps} rounds, commit {commit}; each cell: median over the rounds (worst round in brackets)\n")
print("| movie | pipeline | pictures shown | late > 1 ms | p99.9 lateness | worst lateness | avsrc copies | xruns |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for movie in ("h264.mp4", "ffv1.mkv"):
    for label in ("queues", "one-thread"):
        rows = [r for r in runs if r[0] == label and r[1] == movie]
        if not rows: continue
        col = lambda k, f=float: [f(r[k]) for r in rows]
        med = lambda k, f=float: statistics.median(col(k, f))
        name = "sluice-play FILE (a queue per branch)" if label == "queues" else "the same without its queues"
        print(f"| {movie} | {name} | {med(2, int):.0f} | {med(3, int):.0f} ({max(col(3, int))}) | {med(4):.1f} ms ({max(col(4)):.1f}) "
              f"| {med(5):.1f} ms ({max(col(5)):.1f}) | {med(6, int):.0f} | {med(7, int):.0f} ({max(col(7, int))}) |")
EOF
)
echo "$table"
mkdir -p "$here/results"
echo "$table" > "$here/results/latest-av-sync.md"
