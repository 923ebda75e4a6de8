"""Figures, drawn with matplotlib (imported only here, only when plotting).

* ``plot_bug_benchmark``: the fraction of (bug, trial) pairs found against time,
  one curve per strategy, time on a log axis (``cowfuzz bench --plot``).
"""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_bug_benchmark(trials, path: Path, budget: float) -> None:
    """One step curve per strategy: share of (bug, trial) pairs found by time t."""
    plt = _pyplot()
    by_strategy: dict[str, list] = {}
    for t in trials:
        by_strategy.setdefault(t["strategy"], []).append(t)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for strategy, ts in sorted(by_strategy.items()):
        times = sorted(max(t["seconds"], 0.01) for t in ts if t["found"])
        total = len(ts)
        xs = [0.01] + [x for x in times for _ in (0, 1)] + [budget]
        ys = [0.0]
        for i in range(len(times)):
            ys += [i / total, (i + 1) / total]
        ys.append(len(times) / total)
        ax.plot(xs, ys, label=f"{strategy} ({len(times)}/{total})", linewidth=1.8)
    ax.set_xscale("log")
    ax.set_xlim(0.05, budget)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("seconds (log scale, one core per trial)")
    ax.set_ylabel("fraction of (bug, trial) pairs found")
    ax.set_title("Known bugs found against time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
