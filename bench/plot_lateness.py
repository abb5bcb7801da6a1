#!/usr/bin/env python3
"""Draws the lateness distributions in one or more sluice-play --stats-json files as an SVG:
fraction of samples later than x (log-log), one curve per clocked render per file.

    bench/plot_lateness.py out.svg label1=stats1.json [label2=stats2.json ...]
"""
import json
import math
import sys

W, H, L, R, T, B = 1000, 500, 70, 300, 40, 60
X0, X1, Y0, Y1 = 3, 9, 0, -6  # 1 us .. 1 s; 1 .. 1e-6
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def px(ns):
    return L + (math.log10(max(ns, 10 ** X0)) - X0) / (X1 - X0) * (W - L - R)


def py(frac):
    return T + (math.log10(max(frac, 1e-6)) - Y0) / (Y1 - Y0) * (H - T - B)


def main():
    out, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' font-size='12'>",
           "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{L}' y='22' font-size='15'>Lateness of clocked renders (fraction of samples later than x)</text>"]
    labels = ["1us", "10us", "100us", "1ms", "10ms", "100ms", "1s"]
    for d in range(X0, X1 + 1):
        x = px(10 ** d)
        svg.append(f"<line x1='{x}' y1='{T}' x2='{x}' y2='{H - B}' stroke='#ddd'/>")
        svg.append(f"<text x='{x}' y='{H - B + 16}' text-anchor='middle'>{labels[d - X0]}</text>")
    for d in range(Y0, Y1 - 1, -1):
        y = py(10 ** d)
        svg.append(f"<line x1='{L}' y1='{y}' x2='{W - R}' y2='{y}' stroke='#ddd'/>")
        svg.append(f"<text x='{L - 6}' y='{y + 4}' text-anchor='end'>1e{d}</text>")
    svg.append(f"<text x='{(L + W - R) / 2}' y='{H - 18}' text-anchor='middle'>lateness</text>")
    series = 0
    for label, path in runs:
        with open(path) as f:
            stats = json.load(f)
        for node, values in sorted(stats.get("nodes", {}).items()):
            buckets = values.get("lateness_histogram_ns")
            if not buckets:
                continue
            total = sum(c for _, c in buckets)
            above, points = total, []
            for upper, count in buckets:
                points.append(f"{px(upper):.1f},{py(above / total):.1f}")
                above -= count
                points.append(f"{px(upper):.1f},{py(max(above, 0.5) / total):.1f}")
            color = COLORS[series % len(COLORS)]
            svg.append(f"<polyline fill='none' stroke='{color}' stroke-width='1.8' points='{' '.join(points)}'/>")
            ly = T + 14 + 18 * series
            svg.append(f"<line x1='{W - R + 10}' y1='{ly - 4}' x2='{W - R + 34}' y2='{ly - 4}' stroke='{color}' stroke-width='2'/>")
            svg.append(f"<text x='{W - R + 40}' y='{ly}'>{label}: {node} ({total} samples)</text>")
            series += 1
    svg.append(f"<rect x='{L}' y='{T}' width='{W - L - R}' height='{H - T - B}' fill='none' stroke='black'/></svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
