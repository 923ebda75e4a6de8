"""Benchmark: how many executions a strategy needs to find a bug (machine-independent).

    python -m fuzz.bench.depth [--strategy random] [--seeds 5] [--first-seed 1] [--cap 100000] VARIANT...

``cowfuzz bench`` measures against the clock, which a loaded machine
stretches; this counts executions instead. For each variant and seed, the
strategy (the campaign's worker code path, one process) runs slices of
2,000 executions from an empty corpus until the first violation of the
variant's expected oracle that its base design does not show on the same
program and schedule (trials.py), or the cap; strategies that draw only
from their seed make every number here reproducible. A miss counts as the cap. The
deep tier of the bug benchmark is the variants on which random needs a
median above 20,000 executions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from fuzz.bench.trials import _HuntSession
from fuzz.search.strategies import STRATEGIES
from fuzz.search.worker import slice_rng
from model.variants import get_variant, load_design

SLICE_RUNS = 2000


def executions_to_find(variant: str, strategy: str, seed: int, cap: int,
                       options: dict | None = None) -> tuple[int | None, float]:
    """(executions to the first violation of the variant's oracle or None, seconds);
    ``options`` go to the strategy beside the seed."""
    cls = get_variant(variant)
    with tempfile.TemporaryDirectory(prefix="cowfuzz-depth-") as workdir:
        session = _HuntSession(cls, variant, workdir)
        session.target = cls.expected_oracle or "any"
        strategy_obj = STRATEGIES[strategy].create(session, {**(options or {}), "seed": seed})
        start = time.monotonic()
        spent, slice_no = 0, 0
        try:
            while spent < cap:
                slice_no += 1
                session.begin_slice(slice_no, None, min(SLICE_RUNS, cap - spent))
                strategy_obj.run_slice(slice_rng(seed, 0, slice_no))
                hit = session.hit()
                if hit is not None:
                    return spent + hit.run, time.monotonic() - start
                spent += session.runs
        finally:
            strategy_obj.close()
    return None, time.monotonic() - start


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
