#!/usr/bin/env python3
"""Draws scenario 4 (decommit with blocked waiters) as an SVG: for each waiter count, the fraction
of rounds in which the last waiter was back later than x, one curve per pool. Curves that lie on
top of each other are pools that wake their waiters equally fast.

    bench/plot_decommit.py latest-s4-rounds.tsv latest-s4.svg

Input: the lines sluice-bench writes with SLUICE_BENCH_S4_ROUNDS set (waiters, pool, round,
ns to the last return, ns of the decommit() call; tab-separated).
"""
import math
import sys
from collections import defaultdict

PANEL_W, H, L, R, T, B = 520, 440, 70, 20, 64, 60
COLORS = {"mutex": "#1f77b4", "moodycamel": "#ff7f0e", "sluice": "#d62728"}


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def panel(svg, x0, waiters, pools):
    every = [ns for rows in pools.values() for ns in rows]
    lo = math.floor(math.log10(min(every) / 1e3))  # decades of microseconds
    hi = math.ceil(math.log10(max(every) / 1e3))
    if hi == lo:
        hi += 1
    rounds = max(len(v) for v in pools.values())
    bottom = -math.ceil(math.log10(rounds))  # the fraction 1/rounds fits

    def px(us):
        return x0 + L + (math.log10(us) - lo) / (hi - lo) * (PANEL_W - L - R)

    def py(frac):
        return T + (math.log10(frac)) / bottom * (H - T - B)

    svg.append(f"<text x='{x0 + L}' y='{T - 12}' font-size='14'>{waiters} waiters</text>")
    for d in range(lo, hi + 1):
        for step in (1, 2, 5):  # 1, 2 and 5 in every decade
            us = step * 10 ** d
            if us > 10 ** hi:
                break
            x = px(us)
            svg.append(f"<line x1='{x:.1f}' y1='{T}' x2='{x:.1f}' y2='{H - B}' stroke='{'#ccc' if step == 1 else '#eee'}'/>")
            label = f"{us:g} µs" if us < 1000 else f"{us / 1000:g} ms"
            svg.append(f"<text x='{x:.1f}' y='{H - B + 18}' text-anchor='middle'>{label}</text>")
    for e in range(0, bottom - 1, -1):
        y = py(10 ** e)
        svg.append(f"<line x1='{x0 + L}' y1='{y:.1f}' x2='{x0 + PANEL_W - R}' y2='{y:.1f}' stroke='#ddd'/>")
        svg.append(f"<text x='{x0 + L - 6}' y='{y + 4:.1f}' text-anchor='end'>{10.0 ** e:g}</text>")
    svg.append(f"<rect x='{x0 + L}' y='{T}' width='{PANEL_W - L - R}' height='{H - T - B}' fill='none' stroke='black'/>")
    svg.append(f"<text x='{x0 + (PANEL_W + L - R) / 2}' y='{H - 18}' text-anchor='middle'>"
               "decommit() called → last waiter back</text>")
    for i, (pool, values) in enumerate(pools.items()):
        v = sorted(values)
        n = len(v)
        # Fraction of rounds later than x: a step down at every value.
        pts = [(px(v[0] / 1e3), py(1.0))]
        for k, ns in enumerate(v):
            later = (n - k - 1) / n
            pts.append((px(ns / 1e3), pts[-1][1]))
            pts.append((px(ns / 1e3), py(max(later, 1 / n))))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        color = COLORS.get(pool, "#555")
        svg.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='1.6'/>")
        # The legend goes bottom left, where a falling tail curve never is.
        ly = H - B - 12 - 18 * (len(pools) - 1 - i)
        svg.append(f"<line x1='{x0 + L + 10}' y1='{ly - 4}' x2='{x0 + L + 30}' y2='{ly - 4}' "
                   f"stroke='{color}' stroke-width='2'/>")
        svg.append(f"<text x='{x0 + L + 35}' y='{ly}'>{pool}: median {median(v) / 1e3:.0f} µs</text>")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = defaultdict(lambda: defaultdict(list))
    try:
        with open(sys.argv[1]) as f:
            for number, line in enumerate(f, 1):
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 5 or not all(x.isdigit() for x in (fields[0], fields[3])) or int(fields[3]) <= 0:
                    sys.exit(f"plot_decommit.py: {sys.argv[1]}:{number}: expected waiters, pool, round, "
                             "ns (> 0), ns, tab-separated")
                data[int(fields[0])][fields[1]].append(int(fields[3]))
    except OSError as e:
        sys.exit(f"plot_decommit.py: cannot read {sys.argv[1]}: {e.strerror}")
    if not data:
        sys.exit(f"plot_decommit.py: no rounds in {sys.argv[1]}")
    width = PANEL_W * len(data)
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{H}' font-family='sans-serif' "
           "font-size='12'>", "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{L}' y='20' font-size='15'>Decommit with blocked waiters: fraction of rounds "
           "slower than x (every pool in every round)</text>"]
    for i, waiters in enumerate(sorted(data)):
        panel(svg, i * PANEL_W, waiters, data[waiters])
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
