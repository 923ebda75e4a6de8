"""Figures, drawn with matplotlib (imported only here, only when plotting).

* ``plot_campaign``: a campaign's plot_data.csv (fuzz/search/progress.py) as three
  stacked panels sharing the time axis -- coverage (lines and interleaving
  features), executions per second, unique violations (``cowfuzz plot DIR``);
* ``plot_bug_benchmark``: the fraction of (bug, trial) pairs found against time,
  one panel per tier (shallow, deep), one curve per strategy, time on a log axis
  (``cowfuzz bench --plot``).
"""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_plot_data(csv_path: Path) -> dict:
    """Columns of plot_data.csv as lists of floats."""
    import csv
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{csv_path}: no rows yet")
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def plot_campaign(folder: Path, out: Path | None = None) -> Path:
    """campaign.png next to the folder's plot_data.csv."""
    data = read_plot_data(Path(folder) / "plot_data.csv")
    out = Path(out) if out else Path(folder) / "campaign.png"
    plt = _pyplot()
    t = data["seconds"]
    fig, (cov, rate, bugs) = plt.subplots(3, 1, figsize=(8, 7), dpi=110, sharex=True)
    cov.plot(t, data["lines"], label="line coverage of model/ (lines)", color="tab:blue")
    cov.set_ylabel("lines covered")
    feat = cov.twinx()
    feat.plot(t, data["features"], label="interleaving features", color="tab:orange")
    feat.set_ylabel("interleaving features")
    handles = cov.get_legend_handles_labels()[0] + feat.get_legend_handles_labels()[0]
    cov.legend(handles, [h.get_label() for h in handles], loc="lower right")
    cov.set_title(f"Campaign {Path(folder).name}")
    rate.plot(t, data["execs_per_s"], color="tab:green")
    rate.set_ylabel("executions / s")
    bugs.step(t, data["unique_violations"], where="post", color="tab:red",
              label="unique violations")
    bugs.step(t, data["total_violations"], where="post", color="tab:red", alpha=0.35,
              linestyle="--", label="all violations")
    bugs.set_ylabel("violations")
    bugs.set_ylim(bottom=0, top=max(1.0, max(data["total_violations"]) * 1.15))
    bugs.yaxis.get_major_locator().set_params(integer=True)
    bugs.set_xlabel("seconds since the campaign started")
    bugs.legend(loc="upper left")
    for ax in (cov, rate, bugs):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_bug_benchmark(trials, path: Path, budget: float, tiers=("shallow", "deep")) -> None:
    """One panel per tier of the bug benchmark, one step curve per strategy in each: the
    share of the tier's (bug, trial) pairs found by time t."""
    plt = _pyplot()
    present = [t for t in tiers if any(tr.get("tier", "shallow") == t for tr in trials)] or \
        list(tiers[:1])
    fig, axes = plt.subplots(1, len(present), figsize=(6.2 * len(present), 4.2), dpi=120,
                             squeeze=False)
    for ax, tier in zip(axes[0], present):
        by_strategy: dict[str, list] = {}
        for t in trials:
            if t.get("tier", "shallow") == tier:
                by_strategy.setdefault(t["strategy"], []).append(t)
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
        ax.set_title(f"{tier.capitalize()} tier: known bugs found against time")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
