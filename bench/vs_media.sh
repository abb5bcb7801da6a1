#!/usr/bin/env bash
# Decoding real media files: sluice-play's avsrc against the ffmpeg CLI and GStreamer's decodebin
# (gstreamer1.0-libav: the same FFmpeg decoders), on the same files, in one run, alternating the
# three. Whole-command wall time over REPS rounds (each tool once a round, ratios taken round by
# round). The first H.264 row lets every tool pick its own decoder threads (avsrc one per core,
# the ffmpeg CLI and avdec_h264 their automatic counts); the next two give all three the same
# count, one per core and then FFmpeg's automatic cores + 1, with GStreamer's decodebin spelled
# out (qtdemux ! h264parse ! avdec_h264, what it picks) to set max-threads. Files are made at the
# start with the ffmpeg CLI:
#   720p H.264, 30 s at 30 fps (libx264, testsrc2)        -> decode to a null sink
#   FLAC 44.1 kHz stereo, 10 min (a sine sweep)           -> decode and resample to 48 kHz
#   1080p Y4M, 200 I420 pictures (testsrc2)               -> scale to 720p (bilinear on both sides),
#                                                            and scale to 720p + convert to RGBA
# Raw pictures, so the scaler is what is measured: no GStreamer column there (no Y4M parser in
# this GStreamer). Built as the README builds (RelWithDebInfo, -O2), into build/ (BUILD=dir for
# another); SLUICE_LOCK_HELD=1 when the caller already holds /tmp/sluice-build.lock.
#
#   bench/vs_media.sh            # prints a table; bench/results/latest-media.md keeps it
#   REPS=18 bench/vs_media.sh
#   ONLY=H.264 REPS=30 bench/vs_media.sh   # only the cases whose name matches (grep -E); the
#                                          # table then goes to results/latest-media-only.md
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-12}  # rounds; a multiple of 6 goes through every order of the three tools alike
build=${BUILD:-build}
locked() { if [ -n "${SLUICE_LOCK_HELD:-}" ]; then "$@"; else flock /tmp/sluice-build.lock "$@"; fi; }
for tool in ffmpeg gst-launch-1.0; do
  command -v $tool >/dev/null || { echo "needs $tool (.ci/install-deps installs it)" >&2; exit 1; }
done
gst-inspect-1.0 avdec_h264 >/dev/null 2>&1 || { echo "needs gstreamer1.0-libav" >&2; exit 1; }
# grep says 2 for a pattern it cannot read: say so rather than skip every case.
if [ -n "${ONLY:-}" ]; then
  grep -qE -- "$ONLY" <<<"" 2>/dev/null || [ $? -eq 1 ] || { echo "ONLY=$ONLY: not an extended regular expression (grep -E)" >&2; exit 2; }
  cases=$(sed -n 's/^  run_case "\(.*\)" \\$/\1/p' "$0")  # the names below, one a line
  grep -qE -- "$ONLY" <<<"$cases" || { echo "ONLY=$ONLY matches no case (the cases: $(paste -sd ';' <<<"$cases"))" >&2; exit 2; }
fi
locked cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
locked cmake --build "$build" -j2 --target sluice-play >/dev/null
play="$build/demos/sluice-play"
cores=$(nproc)  # the CPUs this process may run on, as avsrc counts them
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "making the files ..." >&2
ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=30:duration=30 -c:v libx264 -preset veryfast -pix_fmt yuv420p "$work/720p.mp4"
ffmpeg -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -frames:v 200 -pix_fmt yuv420p "$work/1080p.y4m"
ffmpeg -v error -f lavfi -i "aevalsrc=0.5*sin(2*PI*(100+t*10)*t)|0.5*sin(2*PI*(200+t*5)*t):s=44100:d=600" -c:a flac "$work/10min.flac"

now() { date +%s%N; }
timed() { local t0; t0=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; echo $(( $(now) - t0 )); }

# Round by round: each round runs every tool once, the rounds going through every order of the
# tools in turn (so each tool runs before each other one equally often, and first, second and
# last equally often, over a multiple of 6 rounds), and the ratio is taken within the round. The
# table gives the medians of the times, the median of the ratios with its 95 % bootstrap interval,
# and in how many rounds Sluice was the faster. A shared machine's slow moments then hit both
# sides of a ratio.
declare -A t
run_case() {  # name sluice-args ffmpeg-args gst-pipeline ("-": none)
  local name=$1 ours=$2 ff=$3 gst=$4 r tool
  [ -z "${ONLY:-}" ] || grep -qE -- "$ONLY" <<<"$name" || return 0
  local orders=("sluice ffmpeg gst" "sluice gst ffmpeg" "ffmpeg sluice gst" "ffmpeg gst sluice" "gst sluice ffmpeg" "gst ffmpeg sluice")
  [ "$gst" = - ] && orders=("sluice ffmpeg" "ffmpeg sluice")
  for r in $(seq "$REPS"); do
    for tool in ${orders[$(( (r - 1) % ${#orders[@]} ))]}; do
      case $tool in
        sluice) t[$name,sluice]+="$(timed "$play" -q --no-realtime "$ours") " ;;
        # shellcheck disable=SC2086
        ffmpeg) t[$name,ffmpeg]+="$(timed ffmpeg -v error $ff) " ;;
        # shellcheck disable=SC2086
        gst) t[$name,gst]+="$(timed gst-launch-1.0 -q $gst) " ;;
      esac
    done
    printf '\r%s: %d/%d' "$name" "$r" "$REPS" >&2
  done
  printf '\r\033[K' >&2
  python3 - "$name" "${t[$name,sluice]}" "${t[$name,ffmpeg]}" "${t[$name,gst]:-}" <<'PY'
import random, statistics, sys
name, ours, ff, gst = sys.argv[1], *[[int(x) for x in a.split()] for a in sys.argv[2:]]
def ratio(peer):  # peer / ours round by round: median, 95 % bootstrap interval, rounds we won
    r = [p / o for o, p in zip(ours, peer)]
    rng = random.Random(1)
    b = sorted(statistics.median(rng.choices(r, k=len(r))) for _ in range(2000))
    return "%.2fx (%.2f-%.2f, %d of %d)" % (statistics.median(r), b[50], b[1949], sum(v > 1 for v in r), len(r))
sec = lambda v: "%.2f s" % (statistics.median(v) / 1e9)
print("| %s | %s | %s | %s | %s | %s |" % (name, sec(ours), sec(ff), sec(gst) if gst else "-", ratio(ff),
                                          ratio(gst) if gst else "-"))
PY
}

{
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(ffmpeg -version | head -1 | cut -d' ' -f1-3); GStreamer $(gst-launch-1.0 --version | sed -n 's/.*version //p' | head -1); commit $(git rev-parse --short HEAD); $REPS rounds${ONLY:+ (only the cases matching $ONLY)}, medians of whole-command wall time"
  echo
  echo "| file, work | sluice-play | ffmpeg CLI | gst-launch-1.0 decodebin | ffmpeg / Sluice, round by round (95 % interval, rounds Sluice won) | GStreamer / Sluice, likewise |"
  echo "|---|---:|---:|---:|---:|---:|"
  run_case "720p H.264 30 s, decode to a null sink" \
    "avsrc path=$work/720p.mp4 ! nullsink" \
    "-i $work/720p.mp4 -f null -" \
    "filesrc location=$work/720p.mp4 ! decodebin ! fakesink sync=false"
  run_case "the same H.264, one decoder thread per core in all three ($cores)" \
    "avsrc path=$work/720p.mp4 threads=$cores ! nullsink" \
    "-threads $cores -i $work/720p.mp4 -f null -" \
    "filesrc location=$work/720p.mp4 ! qtdemux ! h264parse ! avdec_h264 max-threads=$cores ! fakesink sync=false"
  run_case "the same H.264, FFmpeg's automatic count in all three ($((cores + 1)))" \
    "avsrc path=$work/720p.mp4 threads=$((cores + 1)) ! nullsink" \
    "-threads $((cores + 1)) -i $work/720p.mp4 -f null -" \
    "filesrc location=$work/720p.mp4 ! qtdemux ! h264parse ! avdec_h264 max-threads=$((cores + 1)) ! fakesink sync=false"
  run_case "FLAC 44.1 kHz 10 min, decode + resample to 48 kHz" \
    "avsrc path=$work/10min.flac ! audioresample rate=48000 ! nullsink" \
    "-i $work/10min.flac -ar 48000 -f null -" \
    "filesrc location=$work/10min.flac ! decodebin ! audioconvert ! audioresample ! audio/x-raw,rate=48000 ! fakesink sync=false"
  run_case "the same, our resampler as ffmpeg's (engine=swr)" \
    "avsrc path=$work/10min.flac ! audioresample rate=48000 engine=swr ! nullsink" \
    "-i $work/10min.flac -ar 48000 -f null -" \
    "filesrc location=$work/10min.flac ! decodebin ! audioconvert ! audioresample ! audio/x-raw,rate=48000 ! fakesink sync=false"
  run_case "1080p Y4M 200 pictures, scale to 720p (bilinear)" \
    "y4msrc path=$work/1080p.y4m ! scale width=1280 height=720 ! nullsink" \
    "-i $work/1080p.y4m -vf scale=1280:720:flags=bilinear -f null -" \
    -
  run_case "the same, scale to 720p + convert to RGBA" \
    "y4msrc path=$work/1080p.y4m ! scale width=1280 height=720 ! videoconvert format=rgba ! nullsink" \
    "-i $work/1080p.y4m -vf scale=1280:720:flags=bilinear,format=rgba -f null -" \
    -
  echo
  echo "Copies per decoded picture in avsrc (its 'copies' stat): $("$play" -q --no-realtime "avsrc path=$work/720p.mp4 ! nullsink" --stats-json "$work/s.json" >/dev/null 2>&1; python3 -c "import json; n=json.load(open('$work/s.json'))['nodes']['avsrc0']; print(n['copies'], 'for', n['samples_out'], 'pictures')")"
} | tee "bench/results/latest-media${ONLY:+-only}.md"
