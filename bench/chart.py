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
    counter = {}  # stateful rows: system -> (calls/s, p50 ms)
    scaling = defaultdict(list)  # system -> [(clients, calls/s)]
    with open(samples_path) as f:
        for row in csv.DictReader(f):
            system, kind, value = row["system"], row["kind"], float(row["value"])
            if kind.startswith("scale:"):
                scaling[system].append((int(kind.split(":")[1]), value))
            elif kind.startswith("counter_"):
                rate_, p50 = counter.get(system, (0.0, 0.0))
                counter[system] = (value, p50) if kind == "counter_rate" else (rate_, value)
            else:
                if system not in order:
                    order.append(system)
                if kind == "latency_ms":
                    latency[system].append(value)
                else:
                    rate[system][kind] = value

    colors = dict(zip(order, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    rows = 2 if counter or scaling else 1
    fig, axes = plt.subplots(rows, 2, figsize=(13, 5.2 * rows), dpi=110, squeeze=False)
    left, right = axes[0]

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

    if rows == 2:
        stateful_bars(axes[1][0], counter)
        scaling_lines(axes[1][1], scaling)

    fig.tight_layout()
    fig.savefig(out_path)


def stateful_bars(ax, counter):
    """The stateful counter: calls/s of the concurrent clients per system, p50 on top."""
    systems = list(counter)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = lambda s: palette[2] if s.startswith("Restate") else (palette[7] if s.startswith("direct") else palette[0])
    heights = [counter[s][0] for s in systems]
    bars = ax.barh(range(len(systems)), heights, color=[color(s) for s in systems],
                   edgecolor="black", lw=0.5)
    for bar, s in zip(bars, systems):
        ax.annotate(f"{counter[s][0]:,.0f}/s, p50 {counter[s][1]:.2f} ms",
                    (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center",
                    fontsize=7, xytext=(3, 0), textcoords="offset points")
    ax.set_yticks(range(len(systems)))
    ax.set_yticklabels(systems, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("calls/s, closed-loop clients on as many keys (log scale)")
    ax.set_title("Stateful counter (read + write per call), same SDK language")
    ax.grid(True, axis="x", which="both", alpha=0.3)


def scaling_lines(ax, scaling):
    """Calls/s against the number of clients, log-log."""
    for system, points in scaling.items():
        points.sort()
        style = "--" if "(echo)" in system else "-"
        ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", ms=3,
                label=system, lw=1.5)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("closed-loop clients, each on its own key (log scale)")
    ax.set_ylabel("calls/s (log scale)")
    ax.set_title("Throughput from 1 to 256 clients")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="best")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
