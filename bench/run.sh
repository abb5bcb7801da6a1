#!/usr/bin/env bash
# Builds bench/ (Release, in build-bench/) and runs everything issue #5 asks for in one go:
# the Google Benchmark scenarios, callgrind instructions per pair, heap allocations and system
# calls of scenario 1. Prints the table and writes bench/results/latest.md, latest.json (Google
# Benchmark's raw JSON) and latest-counts.tsv (the raw counts). About 3 minutes on 2 idle cores,
# plus up to 3 more waiting for them to be idle.
#
# The build lock is shared with everyone building on this machine; only cmake runs under it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
build="$top/build-bench"
results="$here/results"
lock=/tmp/sluice-build.lock

# Scenario 1 pair counts: each tool runs twice and the difference is divided by the extra pairs,
# so set-up, warm-up and exit cancel out.
cg_pairs=(100000 200000)       # callgrind: ~50x slower than native
strace_pairs=(2000000 4000000)  # N and 2N: a per-pair system call would show as 2M
alloc_pairs=100000
pools=(mutex moodycamel mimalloc glibc sluice treiber)

for tool in valgrind strace python3 flock; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (bash .ci/install-deps)" >&2; exit 1; }
done

echo "== build (Release, $build)"
flock "$lock" cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_BENCH=ON \
  -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_DEMOS=OFF >/dev/null
flock "$lock" cmake --build "$build" -j2 --target sluice-bench sluice-count-scenario1 sluice-count-allocs

# Percent of CPU time idle over the next second, from /proc/stat.
idle_percent() {
  local a b
  read -r _ a < /proc/stat; sleep 1; read -r _ b < /proc/stat
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x, " "); split(b, y, " "); for (i = 1; i <= n; i++) t += y[i] - x[i];
    print int(100 * ((y[4] - x[4]) + (y[5] - x[5])) / (t ? t : 1)) }'
}
# Timings on two shared cores are only worth something while nobody else computes: wait (up to
# 3 minutes) for the machine to be at least 85 % idle, then measure anyway and say so.
wait_for_quiet() {
  local deadline=$(( $(date +%s) + 180 )) idle
  while idle=$(idle_percent); (( idle < 85 )); do
    if (( $(date +%s) > deadline )); then
      echo "   still only $idle % idle after 3 minutes; measuring anyway" >&2
      break
    fi
    echo "   machine $idle % idle (another build?); waiting for it to be quiet" >&2
    sleep 5
  done
  echo "$idle"
}

bin="$build/bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$results"
started=$(date +%s)
echo "== waiting for an idle machine"
idle_before=$(wait_for_quiet)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== Google Benchmark: scenarios 1-4, 5 repetitions each (scenario 4: 200 inside one run)"
"$bin/sluice-bench" --benchmark_repetitions=5 --benchmark_min_time=0.5 \
  --benchmark_enable_random_interleaving=true --benchmark_display_aggregates_only=true \
  --benchmark_out="$tmp/latest.json" --benchmark_out_format=json
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
idle_after=$(idle_percent)

echo "== scenario 1 counts: callgrind (${cg_pairs[*]} pairs), allocations, strace (${strace_pairs[*]} pairs)"
printf 'pool\tcg_pairs_1\tcg_ir_1\tcg_pairs_2\tcg_ir_2\talloc_pairs\tallocs\tfrees\tsetup_allocs\tst_pairs_1\tst_calls_1\tst_futex_1\tst_pairs_2\tst_calls_2\tst_futex_2\n' \
  > "$tmp/counts.tsv"
# strace -c: "% time seconds usecs/call calls [errors] syscall"; calls is the 4th field.
strace_count() {  # file, syscall name or "total"
  awk -v name="$2" '$NF == name { print $4; found = 1 } END { if (!found) print 0 }' "$1"
}
field() {  # key, "k1=v1 k2=v2 ..." line
  sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"
}
for pool in "${pools[@]}"; do
  row=("$pool")
  for n in "${cg_pairs[@]}"; do
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$pool.$n" "$bin/sluice-count-scenario1" "$pool" "$n" \
      >/dev/null 2>"$tmp/cg.$pool.$n.log"
    row+=("$n" "$(awk '/^summary:/ { print $2 }' "$tmp/cg.$pool.$n")")
  done
  line=$("$bin/sluice-count-allocs" "$pool" "$alloc_pairs")
  row+=("$alloc_pairs" "$(field allocs "$line")" "$(field frees "$line")" "$(field setup_allocs "$line")")
  for n in "${strace_pairs[@]}"; do
    strace -f -c -o "$tmp/st.$pool.$n" "$bin/sluice-count-scenario1" "$pool" "$n" >/dev/null
    row+=("$n" "$(strace_count "$tmp/st.$pool.$n" total)" "$(strace_count "$tmp/st.$pool.$n" futex)")
  done
  (IFS=$'\t'; echo "${row[*]}") >> "$tmp/counts.tsv"
  echo "   $pool done"
done

cp "$tmp/latest.json" "$results/latest.json"
cp "$tmp/counts.tsv" "$results/latest-counts.tsv"
python3 "$here/report.py" --json "$results/latest.json" --counts "$results/latest-counts.tsv" \
  --load-before "$load_before" --load-after "$load_after" --idle-before "$idle_before" --idle-after "$idle_after" \
  --seconds "$(( $(date +%s) - started ))" --repo "$top" --out "$results/latest.md"
