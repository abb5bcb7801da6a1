#!/usr/bin/env python3
"""Pools the callback timings bench/jack_callback_probe.cpp wrote for one JACK client over every
file given and prints, on one line, in microseconds:

    cycles  late: p50 p99 p99.9 max  duration: p50 p99 p99.9 max  overruns

`late` is how much later than one period after the previous callback each callback began;
`duration` how long it ran; `overruns` the callbacks that ran longer than a period (each alone
misses its cycle). A client with no file, or no line of its own, prints dashes.

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
    period = 0.0
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
                        hist[int(k)] = hist.get(int(k), 0) + v
                cycles += d["cycles"]
                period = d["period_us"] or period
            except (json.JSONDecodeError, KeyError, ValueError, AttributeError):
                sys.exit(f"{path}:{n}: not a line of jack_callback_probe")
    if not late:
        print(" ".join(["-"] * 10))
        return
    quantiles = (0.5, 0.99, 0.999, 1.0)
    overruns = sum(v for k, v in duration.items() if k > period)
    fields = [cycles] + [percentile(late, q) for q in quantiles] + [percentile(duration, q) for q in quantiles] + [overruns]
    print(" ".join(str(f) for f in fields))


main()
