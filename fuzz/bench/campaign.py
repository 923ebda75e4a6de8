"""Benchmark: campaign throughput with 1 and with N jobs.

    python -m fuzz.bench.campaign [--strategy S ...] [--time SEC] [--jobs N] [--variant V]

Runs the real coordinator (fuzz/search/campaign.py) once with one job and once
with N, and prints the executions per second of each and their ratio. The
cost of one execution grows with the programs in the corpus, so both start
from the same seeds (read only), the queue a warm-up campaign grew first:
otherwise the N-job campaign, whose corpus grows faster, would be measured
on bigger programs. Executions are what the strategies ran; the re-runs a
worker does to learn the features of entries other workers found are
overhead of the N-job campaign, and are not counted.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from fuzz.search.campaign import Campaign, CampaignConfig
from fuzz.search.progress import Reporter


def campaign(variant: str, strategy: str, jobs: int, seconds: float, seed: int,
             corpus: Path, folder: Path):
    """A quiet campaign from the seeds in ``corpus``; its queue, crashes and scratch space
    go to ``folder``."""
    config = CampaignConfig(variant=variant, strategy=strategy, seconds=seconds, jobs=jobs,
                            seed=seed, corpus_dir=corpus, crashes_dir=folder / "crashes",
                            campaign_dir=folder, slice_seconds=10.0)
    sink = io.StringIO()
    return Campaign(config, Reporter(out=sink, err=sink, quiet=True)).run()


def throughput(variant: str, strategy: str, jobs: int, seconds: float, seed: int,
               seed_corpus: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="cowfuzz-bench-") as tmp:
        stats = campaign(variant, strategy, jobs, seconds, seed, seed_corpus, Path(tmp))
        return stats.runs / stats.elapsed


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategy", nargs="+", default=["coverage", "random"])
    ap.add_argument("--variant", default="upstream")
    ap.add_argument("--time", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    print(f"variant {args.variant}; {args.warmup:g} s warm-up, then {args.time:g} s per campaign")
    print(f"{'strategy':<11} {'corpus':>7} {'1 job exec/s':>13} {f'{args.jobs} jobs exec/s':>14} "
          f"{'ratio':>6}")
    for strategy in args.strategy:
        with tempfile.TemporaryDirectory(prefix="cowfuzz-bench-") as tmp:
            warm_folder = Path(tmp) / "warm-up"
            warm = campaign(args.variant, strategy, 1, args.warmup, args.seed + 1000,
                            Path(tmp) / "no-seeds", warm_folder)
            seed_corpus = warm_folder / "queue"
            one = throughput(args.variant, strategy, 1, args.time, args.seed, seed_corpus)
            many = throughput(args.variant, strategy, args.jobs, args.time, args.seed,
                              seed_corpus)
        print(f"{strategy:<11} {warm.corpus:>7,} {one:>13,.0f} {many:>14,.0f} {many / one:>6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
