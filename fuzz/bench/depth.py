"""Benchmark: how many executions a strategy needs to find a bug (machine-independent).

    python -m fuzz.bench.depth [--strategy random] [--seeds 5] [--first-seed 1] [--cap 100000] VARIANT...

``cowfuzz bench`` stops a trial at the clock, which a loaded machine
stretches; this stops it at a count of executions instead. For each variant
and seed, the strategy runs the bench's trial (trials.py: the campaign's
worker code path, one process, slices of 2,000 executions from an empty
corpus) until the first violation of the variant's expected oracle that its
base design does not show on the same program and schedule, or the cap. A
seed makes the same executions here as in a bench trial, and strategies that
draw only from their seed make every number reproducible. A miss counts as
the cap. The
deep tier of the bug benchmark is the variants on which random needs a
median above 20,000 executions.

The counts are heavy-tailed, so telling two versions of a strategy apart
takes twenty seeds or more, and seeds other than the bench's 1 to 5 (which a
change tuned on them would overfit): the same code of ``guided`` finds
misplaced-unlock-page within 40,000 executions in 3 of seeds 1-6 and in 10 of
seeds 7-18, and parallel-zap-flush-miss in a median of 3,362 executions on
seeds 1-10 and 8,671 on seeds 21-40 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics

from fuzz.bench.trials import hunt
from model.variants import get_variant, load_design


def executions_to_find(variant: str, strategy: str, seed: int, cap: int,
                       options: dict | None = None) -> tuple[int | None, float]:
    """(executions to the first violation of the variant's oracle or None, seconds);
    ``options`` go to the strategy beside the seed."""
    cls = get_variant(variant)
    trial = hunt(variant, strategy, seed, cls.expected_oracle or "any", runs=cap,
                 options=options)
    return (trial.runs if trial.found else None), trial.seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", help="registered names or file.py:Class specs")
    ap.add_argument("--strategy", nargs="+", default=["random"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=1,
                    help="seeds run from this one (to add trials to an earlier run)")
    ap.add_argument("--cap", type=int, default=100_000, help="executions per trial")
    args = ap.parse_args(argv)
    names = [load_design(v).name for v in args.variants]
    print(f"{args.seeds} seeds from {args.first_seed}; cap {args.cap:,} executions per trial")
    print(f"{'variant':<28} {'strategy':<10} {'found':>6} {'median execs':>13}  executions per seed")
    for name in names:
        for strategy in args.strategy:
            runs = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                n, _ = executions_to_find(name, strategy, seed, args.cap)
                runs.append(n)
            found = [r for r in runs if r is not None]
            med = statistics.median([r if r is not None else float("inf") for r in runs])
            shown = f">{args.cap:,}" if med == float("inf") else f"{med:,.0f}"
            each = " ".join("miss" if r is None else f"{r:,}" for r in runs)
            print(f"{name:<28} {strategy:<10} {len(found):>2}/{len(runs):<3} {shown:>13}  {each}",
                  flush=True)


if __name__ == "__main__":
    main()
