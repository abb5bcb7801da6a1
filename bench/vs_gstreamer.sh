#!/usr/bin/env bash
# Per-buffer cost of the whole push path, sluice-play against gst-launch-1.0: the same graph, on
# the same machine, in one run, alternating the two tools. Each graph runs at two buffer counts so
# start-up cancels out: cost per buffer = (t(N2) - t(N1)) / (N2 - N1), medians of REPS runs.
#
#   bench/vs_gstreamer.sh            # builds Release into build-release, prints a table
#   REPS=9 bench/vs_gstreamer.sh     # more repetitions
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
build=build-release

if ! command -v gst-launch-1.0 >/dev/null; then
  echo "needs GStreamer: apt-get install -y gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good" >&2
  exit 1
fi
flock /tmp/sluice-build.lock cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF >/dev/null
flock /tmp/sluice-build.lock cmake --build "$build" -j2 --target sluice-play >/dev/null
play="$build/demos/sluice-play"

now() { date +%s%N; }
# Seconds a command takes, in ns.
timed() { local t0; t0=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; echo $(( $(now) - t0 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A samples
run_case() {  # name N1 N2 sluice-pipeline-with-@N@ gst-pipeline-with-@N@
  local name=$1 n1=$2 n2=$3 ours=$4 theirs=$5
  for r in $(seq "$REPS"); do
    for n in "$n1" "$n2"; do
      samples[$name,sluice,$n]+="$(timed "$play" -q --no-realtime "${ours//@N@/$n}") "
      # shellcheck disable=SC2086
      samples[$name,gst,$n]+="$(timed gst-launch-1.0 -q ${theirs//@N@/$n}) "
    done
    printf '\r%s: %d/%d' "$name" "$r" "$REPS" >&2
  done
  printf '\r\033[K' >&2
  local per_sluice per_gst
  per_sluice=$(( ( $(echo ${samples[$name,sluice,$n2]} | tr ' ' '\n' | median) - $(echo ${samples[$name,sluice,$n1]} | tr ' ' '\n' | median) ) / (n2 - n1) ))
  per_gst=$(( ( $(echo ${samples[$name,gst,$n2]} | tr ' ' '\n' | median) - $(echo ${samples[$name,gst,$n1]} | tr ' ' '\n' | median) ) / (n2 - n1) ))
  awk -v name="$name" -v s="$per_sluice" -v g="$per_gst" \
    'BEGIN { printf "| %s | %.3f us | %.3f us | %.1fx |\n", name, s / 1000, g / 1000, (s > 0 ? g / s : 0) }'
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); GStreamer $(gst-launch-1.0 --version | sed -n 's/.*version //p' | head -1); $REPS runs each, medians"
echo
echo "| graph (per buffer) | sluice-play | gst-launch-1.0 | GStreamer / Sluice |"
echo "|---|---|---|---|"
run_case "audio: tone 64 frames s16 stereo ! gain ! null" 20000 200000 \
  "tone frames=64 rate=48000 channels=2 format=s16 num-buffers=@N@ ! gain db=-6 ! nullsink" \
  "audiotestsrc num-buffers=@N@ samplesperbuffer=64 ! audio/x-raw,format=S16LE,rate=48000,channels=2 ! volume volume=0.5 ! fakesink sync=false"
run_case "video: 1280x720 test picture ! convert to RGBA ! null" 30 300 \
  "videotest width=1280 height=720 num-buffers=@N@ ! videoconvert format=rgba ! nullsink" \
  "videotestsrc num-buffers=@N@ ! video/x-raw,width=1280,height=720,format=I420 ! videoconvert ! video/x-raw,format=RGBA ! fakesink sync=false"
run_case "video: 1280x720 RGBA test picture ! convert to I420 ! null" 30 300 \
  "videotest width=1280 height=720 format=rgba num-buffers=@N@ ! videoconvert format=i420 ! nullsink" \
  "videotestsrc num-buffers=@N@ ! video/x-raw,width=1280,height=720,format=RGBA ! videoconvert ! video/x-raw,format=I420 ! fakesink sync=false"
