#!/usr/bin/env python3
"""Pools the callback timings bench/jack_callback_probe.cpp wrote for one JACK client over every
file given and prints, on one line, in microseconds:

    cycles  late: p50 p99 p99.9 max  duration: p50 p99 p99.9 max  overruns

`late` is how much later than one period after the previous callback each callback began;
`duration` how long it ran; `overruns` the callbacks that ran longer than a period (each alone
misses its cycle). A value at the end of the probe's histogram is a floor, written ">=N" (or
"<=N" at the low end). A client with no file, or no line of its own, prints dashes; a line that
is not the probe's is refused in one line.

    jack_probe_summary.py CLIENT FILE...
"""
import json
import sys


def percentile(hist, q):
    total = sum(hist.values())
    seen = 0
    for k in sorted(hist):
        seen += hist[k]
        if seen >= q * total:
            return k
    return 0


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: jack_probe_summary.py CLIENT FILE...")
    client, paths = sys.argv[1], sys.argv[2:]
    late, duration = {}, {}
    cycles = 0
    period_us = 0.0
    low, high = None, None  # the histogram's clamped ends
    for path in paths:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue  # that run's client never started, or wrote nothing
        for n, line in enumerate(lines, 1):
            try:
                d = json.loads(line)
                if d["client"] != client:
                    continue
                for hist, key in ((late, "late_us"), (duration, "duration_us")):
                    for k, v in d[key].items():
                        hist[int(k)] = hist.get(int(k), 0) + int(v)
                cycles += int(d["cycles"])
                period_us = (d["period_ns"] / 1000 if "period_ns" in d else d.get("period_us", 0)) or period_us
                low, high = d.get("clamped_below_us", low), d.get("clamped_above_us", high)
            except (json.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
                sys.exit(f"{path}:{n}: not a line of jack_callback_probe")
    if not late:
        print(" ".join(["-"] * 10))
        return

    def shown(v):
        return f">={v}" if v == high else f"<={v}" if v == low else str(v)

    quantiles = (0.5, 0.99, 0.999, 1.0)
    overruns = sum(v for k, v in duration.items() if k > period_us)
    fields = [str(cycles)] + [shown(percentile(late, q)) for q in quantiles]
    fields += [shown(percentile(duration, q)) for q in quantiles] + [str(overruns)]
    print(" ".join(fields))


main()
