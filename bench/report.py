#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns one bench/run.sh run into the tables of bench/results/latest.md (and prints them).

Inputs: Google Benchmark's JSON (--json) and the scenario 1 counts run.sh collected (--counts,
tab-separated). Every ratio is a pool's figure divided by the mutex pool's figure from the same
run: below 1.00 is better than the mutex pool. Exit status 0, or 1 when an input is missing.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys

POOLS = ["mutex", "moodycamel", "mimalloc", "glibc", "sluice", "treiber"]
LABELS = {
    "mutex": "mutex pool (DirectShow-style)",
    "moodycamel": "moodycamel BlockingConcurrentQueue",
    "mimalloc": "mimalloc, no pool",
    "glibc": "glibc aligned_alloc, no pool",
    "sluice": "**sluice SampleAllocator (ours)**",
    "treiber": "Treiber stack (floor, not a pool)",
    "null": "no allocator (the harness alone)",
}
NA = "n/a"


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def load_benchmarks(paths):
    """{(scenario, pool, waiters): {"median": ns, "reps": [ns...], "counters": {...}}}"""
    runs = {}
    contexts = []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        contexts.append(doc.get("context", {}))
        add_benchmarks(doc, runs)
    for entry in runs.values():
        if entry["median"] is None and entry["reps"]:
            entry["median"] = statistics.median(entry["reps"])
    return contexts, runs


def add_benchmarks(doc, runs):
    for b in doc["benchmarks"]:
        parts = b["run_name"].split("/")
        scenario, pool = parts[0], parts[1]
        waiters = next((int(p.split(":")[1]) for p in parts if p.startswith("waiters:")), None)
        entry = runs.setdefault((scenario, pool, waiters), {"reps": [], "counters": {}, "median": None})
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
        # Benchmarks registered with UseRealTime()/UseManualTime() say so in their name; the
        # others (scenario 1) are timed by the thread's CPU time.
        key = "real_time" if parts[-1] in ("real_time", "manual_time") else "cpu_time"
        counters = {k: v for k, v in b.items() if isinstance(v, (int, float)) and k not in (
            "real_time", "cpu_time", "iterations", "repetitions", "repetition_index", "threads",
            "family_index", "per_family_instance_index")}
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                entry["median"] = b[key] * scale
                entry["counters"] = counters
        else:
            entry["reps"].append(b[key] * scale)
            if not entry["counters"]:
                entry["counters"] = counters


def load_counts(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    header, rows = lines[0], lines[1:]
    out = {}
    for r in rows:
        d = dict(zip(header, r))
        pool = d.pop("pool")
        out[pool] = {k: int(v) for k, v in d.items()}
    return out


def load_api_counts(path):
    """{"g++-O2": instructions per pair, ...} from run.sh's latest-api-counts.tsv"""
    out = {}
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for row in rows[1:]:
        build, p1, i1, p2, i2 = row[0], *map(float, row[1:5])
        out[build] = (i2 - i1) / (p2 - p1)
    return out


def ratio(value, base):
    if value is None or base in (None, 0):
        return NA
    return f"{value / base:.2f}"


def fmt_ns(v):
    if v is None:
        return NA
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def fmt_us(v):
    return NA if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


def machine(repo):
    model = "?"
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    cxx = "?"
    cache = os.path.join(repo, "build-bench", "CMakeCache.txt")
    if os.path.exists(cache):
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", open(cache).read(), re.M)
        if m:
            cxx = sh(m.group(1), "--version").splitlines()[0]
    commit = sh("git", "-C", repo, "rev-parse", "--short", "HEAD")
    # The allocator under test is what matters; bench/ itself is usually mid-change.
    dirty = sh("git", "-C", repo, "status", "--porcelain", "--", "allocators")
    return {
        "nproc": sh("nproc"),
        "model": model,
        "kernel": platform.release(),
        "glibc": sh("ldd", "--version").splitlines()[0] if sh("ldd", "--version") != "?" else "?",
        "compiler": cxx,
        "commit": commit + (" with uncommitted changes in allocators/" if dirty not in ("", "?")
                            else ", allocators/ as committed"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="append", required=True, help="one per scenario run")
    ap.add_argument("--disturbed", action="append", default=[],
                    help="SCENARIO=PERCENT: share of the machine other processes took meanwhile")
    ap.add_argument("--counts", required=True)
    ap.add_argument("--api-counts", help="count_api.cpp's callgrind counts per compiler and -O level")
    ap.add_argument("--out", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--seconds", default="?")
    args = ap.parse_args()
    for p in args.json + [args.counts]:
        if not os.path.exists(p):
            print(f"report.py: {p} does not exist", file=sys.stderr)
            return 1

    contexts, runs = load_benchmarks(args.json)
    disturbed = dict(d.split("=", 1) for d in args.disturbed)
    counts = load_counts(args.counts)
    api = load_api_counts(args.api_counts) if args.api_counts and os.path.exists(args.api_counts) else {}
    m = machine(args.repo)

    def med(scenario, pool, waiters=None):
        e = runs.get((scenario, pool, waiters))
        return None if e is None else e["median"]

    def counter(scenario, pool, name, waiters=None):
        e = runs.get((scenario, pool, waiters))
        return None if e is None else e["counters"].get(name)

    def instr(pool):
        c = counts.get(pool)
        if not c:
            return None
        return (c["cg_ir_2"] - c["cg_ir_1"]) / (c["cg_pairs_2"] - c["cg_pairs_1"])

    out = []
    w = out.append
    w("# Sluice allocator benchmarks: latest run\n")
    w(f"Machine: {m['nproc']} CPUs, {m['model']} (lscpu model name); Linux {m['kernel']}; "
      f"{m['glibc']}; {m['compiler']}; RelWithDebInfo build (-O2, as the README builds). "
      f"Commit {m['commit']}.  ")
    w(f"Run: {contexts[0].get('date', '?') if contexts else '?'}, {args.seconds} s in all. The "
      f"machine is shared; share of it other processes took while each scenario ran: "
      + ", ".join(f"{k} {v} %" for k, v in disturbed.items())
      + " (run.sh re-runs a scenario above 10 %, while its time budget lasts).  ")
    w("Ratios: the pool's figure divided by the mutex pool's from this same run; below 1.00 is "
      "better than the mutex pool. Times are medians of 5 repetitions (scenario 4: of 204 rounds).\n")

    # ---- Time table
    w("## Time\n")
    w("| pool | s1 one thread ns/pair (CPU) | ×mutex | s2 hand-off ns/buffer | ×mutex | s2 gets that slept¹ "
      "| s3 contention ns/pair | ×mutex | s4 decommit, 4 waiters: median / max µs | ×mutex "
      "| s4 decommit, 64 waiters: median / max µs | ×mutex |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = {s: med(s, "mutex") for s in ("s1_one_thread", "s2_handoff", "s3_contention")}
    base4 = {n: med("s4_decommit", "mutex", n) for n in (4, 64)}
    for pool in POOLS + ["null"]:
        s1, s2, s3 = (med(s, pool) for s in ("s1_one_thread", "s2_handoff", "s3_contention"))
        waited = counter("s2_handoff", pool, "waits_per_buffer")
        cells = [LABELS[pool], fmt_ns(s1), ratio(s1, base["s1_one_thread"]), fmt_ns(s2),
                 ratio(s2, base["s2_handoff"]), NA if waited is None else f"{waited * 100:.1f} %",
                 fmt_ns(s3), ratio(s3, base["s3_contention"])]
        for n in (4, 64):
            mid = med("s4_decommit", pool, n)
            top = counter("s4_decommit", pool, "max_us", n)
            cells += [NA if mid is None else f"{fmt_us(mid / 1e3)} / {fmt_us(top)}",
                      ratio(mid, base4[n])]
        w("| " + " | ".join(cells) + " |")
    w("")
    w("¹ Share of the producer's gets that went to sleep: mutex, on the condition variable; sluice, "
      "in the futex after its bounded spin (AllocatorStats::waits); moodycamel, gets whose "
      "try_dequeue failed, which then spin up to 10 000 times in the semaphore before they may "
      "sleep (an upper bound). The heaps never wait for a buffer.\n")

    # ---- Scenario 1 counts
    w("## Scenario 1 counted (one thread, get then release)\n")
    c0 = counts["mutex"]
    w("| pool | instructions/pair (callgrind) | ×mutex | heap allocations/pair | frees/pair "
      f"| system calls for {(c0['st_pairs_2'] - c0['st_pairs_1']) / 1e6:g}M extra pairs (all / futex) |")
    w("|---|---:|---:|---:|---:|---:|")
    base_i = instr("mutex")
    for pool in POOLS + ["null"]:
        c = counts.get(pool)
        if not c:
            continue
        i = instr(pool)
        calls = c["st_calls_2"] - c["st_calls_1"]
        futex = c["st_futex_2"] - c["st_futex_1"]
        w(f"| {LABELS[pool]} | {i:.1f} | {ratio(i, base_i)} | {c['allocs'] / c['alloc_pairs']:.2f} "
          f"| {c['frees'] / c['alloc_pairs']:.2f} | {calls} / {futex} |")
    w("")
    w("Instructions per pair are (Ir at {1} pairs − Ir at {0} pairs) / {2}, so start-up cancels; "
      "they include the counting loop's own 3 (increment, compare, branch; read off the "
      "disassembly). The no-allocator row adds the validity test that the compiler folds away "
      "for some pools (ours among them) but cannot for an opaque pointer. System calls: `strace -f -c` at "
      "{5} and {6} pairs, the difference; a lone extra call is time-driven housekeeping outside the "
      "pairs (mimalloc, the process's malloc, returns memory freed during set-up to the OS once "
      "its purge delay has passed: one madvise in the longer run). Allocations are counted "
      "around {3} measured pairs by sluice-count-allocs (every pool's set-up allocations were "
      "seen too: {4}).\n".format(
          *(lambda c: (c["cg_pairs_1"], c["cg_pairs_2"], c["cg_pairs_2"] - c["cg_pairs_1"],
                       c["alloc_pairs"]))(c0),
          ", ".join(f"{p} {counts[p]['setup_allocs']}" for p in POOLS if p in counts),
          c0["st_pairs_1"], c0["st_pairs_2"]))

    # ---- The public API, per compiler and optimisation level
    if api:
        w("## The public API pair, as users compile it\n")
        w("`count_api.cpp`: `auto r = alloc.get_buffer(); if (!r) ...; SampleRef s = std::move(*r); s.reset();` "
          "in a loop, compiled with the allocator's sources at each level. Instructions per pair under "
          "callgrind, the loop's increment, compare and branch included.\n")
        w("| compiler | -O2 | -O3 |")
        w("|---|---:|---:|")
        for cxx in ("g++", "clang++-14"):
            cells = [f"{api[cxx + o]:.1f}" if cxx + o in api else NA for o in ("-O2", "-O3")]
            w(f"| {cxx} | " + " | ".join(cells) + " |")
        w("")
        if "g++-O2-named" in api and "g++-O2" in api:
            named, plain = api["g++-O2-named"], api["g++-O2"]
            w(f"A graph's pools name every holder so that a stuck stop can say who holds a sample "
              f"(issue #17): the name stored at the get and at each push. With one get and one push "
              f"named, g++ -O2: {named:.1f} instructions per pair against {plain:.1f}, "
              f"+{named - plain:.1f}.\n")

    # ---- Targets
    w("## Targets for ours (issues #5 and #16)\n")
    w("| target | measured | met? |")
    w("|---|---|---|")

    def verdict(ok):
        return "yes" if ok else "**no**"

    i_s, i_m = instr("sluice"), instr("mutex")
    if i_s is not None and i_m is not None:
        loop = 3  # the counting loop's increment, compare and branch, in every pool's figure
        w(f"| s1: ≤ 60 instructions per pair | {i_s:.1f} as measured; {i_s - loop:.1f} without "
          f"the counting loop's {loop} | {verdict(i_s <= 60)} as measured |")
        w(f"| s1: ≥ 3× fewer instructions than the mutex pool | {i_m / i_s:.2f}× fewer "
          f"({i_m:.1f} vs {i_s:.1f}); {(i_m - loop) / (i_s - loop):.2f}× without the loop "
          f"| {verdict(i_m / i_s >= 3)} |")
    plain_api = {b: v for b, v in api.items() if not b.endswith("-named")}
    if plain_api:
        worst = max(plain_api.values())
        w(f"| public API pair ≤ 40 instructions at -O2 and -O3, GCC and clang | "
          + ", ".join(f"{b} {v:.1f}" for b, v in sorted(plain_api.items())) + f" | {verdict(worst <= 40)} |")
    s3s, s3m = med("s3_contention", "sluice"), med("s3_contention", "mimalloc")
    if s3s is not None and s3m:
        w(f"| s3: contention no slower than mimalloc's per-thread path | {s3s / s3m:.2f}× mimalloc's "
          f"({fmt_ns(s3s)} vs {fmt_ns(s3m)} ns) | {verdict(s3s <= s3m)} |")
    for scenario, limit, text in (("s2_handoff", 0.5, "s2: hand-off ≤ ½ the mutex pool's ns"),
                                  ("s3_contention", 1 / 4, "s3: contention ≤ ¼ the mutex pool's ns")):
        s, b = med(scenario, "sluice"), med(scenario, "mutex")
        if s is not None and b:
            w(f"| {text} | {s / b:.2f}× ({fmt_ns(s)} vs {fmt_ns(b)} ns) | {verdict(s / b <= limit)} |")
    for n in (4, 64):
        s, b = med("s4_decommit", "sluice", n), med("s4_decommit", "mutex", n)
        if s is not None and b:
            paired = counter("s4_decommit", "sluice", "paired_ratio_median", n)
            low = counter("s4_decommit", "sluice", "paired_ratio_ci95_low", n)
            high = counter("s4_decommit", "sluice", "paired_ratio_ci95_high", n)
            sooner = counter("s4_decommit", "sluice", "rounds_sooner_pct", n)
            if paired is None or low is None or high is None:
                met, how, rounds = s <= b, "", ""
            else:
                # Both pools ran in every round, so the round-by-round ratio leaves out whatever else
                # the machine did that round; its 95 % interval says whether a difference is real.
                met = paired <= 1
                how = (" (faster: the whole interval is below 1)" if high < 1 else
                       " (slower: the whole interval is above 1)" if low > 1 else
                       " (level: the interval contains 1)")
                rounds = (f"; round by round: median ratio {paired:.2f}× (95 % interval {low:.2f}–{high:.2f}), "
                          f"sluice's last waiter back first in {sooner:.0f} % of rounds")
            w(f"| s4: decommit with {n} waiters no slower than the mutex pool's broadcast (round by round) "
              f"| {s / b:.2f}× medians ({fmt_us(s / 1e3)} vs {fmt_us(b / 1e3)} µs){rounds} | {verdict(met)}{how} |")
    w("")

    # ---- Spread
    w("## Spread over the 5 repetitions (ns, min – max)\n")
    w("| pool | s1 | s2 | s3 |")
    w("|---|---:|---:|---:|")
    for pool in POOLS + ["null"]:
        cells = [LABELS[pool]]
        for s in ("s1_one_thread", "s2_handoff", "s3_contention"):
            e = runs.get((s, pool, None))
            cells.append(NA if not e or not e["reps"] else f"{fmt_ns(min(e['reps']))} – {fmt_ns(max(e['reps']))}")
        w("| " + " | ".join(cells) + " |")
    w("")
    w("s4 also records the decommit() call alone (median µs, 4 / 64 waiters): " + "; ".join(
        f"{p} {fmt_us(counter('s4_decommit', p, 'call_median_us', 4))} / "
        f"{fmt_us(counter('s4_decommit', p, 'call_median_us', 64))}"
        for p in POOLS if runs.get(("s4_decommit", p, 4))) + ".\n")
    w("Raw data: latest-s1.json … latest-s4.json (Google Benchmark, one run per scenario), "
      "latest-counts.tsv (callgrind, allocation and strace counts).")

    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
