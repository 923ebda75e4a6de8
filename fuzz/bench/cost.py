"""Benchmark: the cost of one execution under each search strategy, side by side.

    python -m fuzz.bench.cost [--variant upstream] [--runs 5000] [STRATEGY...]

Each strategy runs ``--runs`` executions in this process (the worker's code
path: a session and the strategy object, slices of 1,000 executions, seed 1)
and the CPU time they took is divided by the executions: the cost of
generating or mutating an input, running it under the model with its
oracles, and whatever feedback the strategy keeps. Strategies that run in
another process (coverage: libFuzzer) are not measured here. The ratio column is each
strategy's cost over random's, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from fuzz.search.session import Session
from fuzz.search.strategies import STRATEGIES
from fuzz.search.worker import slice_rng
from model.variants import load_design

IN_PROCESS = ("guided", "random", "pct", "pos", "surw")


def cost_per_execution(variant_cls, strategy: str, runs: int, seed: int = 1) -> tuple[float, int]:
    """(CPU seconds per execution, corpus entries kept) over ``runs`` executions."""
    with tempfile.TemporaryDirectory(prefix="cowfuzz-cost-") as workdir:
        session = Session(variant_cls, variant_cls.name, workdir)
        obj = STRATEGIES[strategy].create(session, {"seed": seed})
        done, slice_no = 0, 0
        start = time.process_time()
        try:
            while done < runs:
                slice_no += 1
                session.begin_slice(slice_no, None, min(1000, runs - done))
                obj.run_slice(slice_rng(seed, 0, slice_no))
                done += session.runs
        finally:
            obj.close()
        return (time.process_time() - start) / max(done, 1), len(session.corpus)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("strategies", nargs="*", default=list(IN_PROCESS))
    ap.add_argument("--variant", default="upstream")
    ap.add_argument("--runs", type=int, default=5000)
    args = ap.parse_args(argv)
    cls = load_design(args.variant)
    print(f"variant {cls.name}; {args.runs:,} executions per strategy, seed 1, one process")
    print(f"{'strategy':<10} {'ms/exec':>8} {'x random':>9} {'corpus':>7}")
    base = None
    rows = []
    names = args.strategies if "random" in args.strategies else ["random", *args.strategies]
    for name in names:
        cost, corpus = cost_per_execution(cls, name, args.runs)
        if name == "random":
            base = cost
        rows.append((name, cost, corpus))
    for name, cost, corpus in rows:
        print(f"{name:<10} {cost * 1e3:>8.2f} {cost / base:>9.2f} {corpus:>7,}", flush=True)


if __name__ == "__main__":
    main()
