"""Draws bench/results/latest.png from the samples kar-bench wrote (no network needed).

Usage: python chart.py <samples.csv> <out.png>
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402


def main(samples_path, out_path):
    latency = defaultdict(list)
    rate = defaultdict(dict)
    order = []
    with open(samples_path) as f:
        for row in csv.DictReader(f):
            system = row["system"]
            if system not in order:
                order.append(system)
            if row["kind"] == "latency_ms":
                latency[system].append(float(row["value"]))
            else:
                rate[system][row["kind"]] = float(row["value"])

    colors = dict(zip(order, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), dpi=110)

    # Latency distribution: the CDF of sequential calls, log time axis.
    for system in order:
        values = sorted(latency[system])
        n = len(values)
        left.plot(values, [(i + 1) / n for i in range(n)], label=system, color=colors[system], lw=2)
    left.set_xscale("log")
    left.set_xlabel("latency of one sequential keyed call (ms, log scale)")
    left.set_ylabel("fraction of calls ≤ latency")
    left.set_title("Sequential call latency (CDF)")
    for q in (0.5, 0.99):
        left.axhline(q, color="grey", lw=0.6, ls="--")
        left.text(left.get_xlim()[0], q, f" p{int(q * 100)}", va="bottom", color="grey", fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    left.legend(loc="lower right", fontsize=9)

    # Throughput bars: distinct keys vs one hot key.
    width = 0.38
    xs = range(len(order))
    for offset, kind, label, hatch in ((-width / 2, "distinct", "64 clients, 64 keys", ""),
                                       (width / 2, "hot", "64 clients, 1 key", "//")):
        heights = [rate[s].get(kind, 0.0) for s in order]
        bars = right.bar([x + offset for x in xs], heights, width, label=label,
                         color=[colors[s] for s in order], hatch=hatch, edgecolor="black", lw=0.5)
        for bar, h in zip(bars, heights):
            right.annotate(f"{h:,.0f}", (bar.get_x() + bar.get_width() / 2, h), ha="center",
                           va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    right.set_yscale("log")
    right.set_xticks(list(xs))
    right.set_xticklabels(order, fontsize=9)
    right.set_ylabel("calls/s (log scale)")
    right.set_title("Throughput")
    right.legend(fontsize=9)
    right.grid(True, axis="y", which="both", alpha=0.3)

    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
