"""Benchmark: how fast each search strategy finds a bug.

    python -m fuzz.bench.strategies [--variant V] [--seeds 5] [--cap 120] [STRATEGY...]

For each strategy and seed, one worker session (the campaign's own code
path, one core) runs slices until the first violation or the cap, and the
executions and seconds to that first violation are recorded. The table
shows the median over the seeds (a run that hit the cap counts as the cap,
so a median of ">cap" means most seeds missed). The default variant is the
test suite's planted bug (GUP-fast without write_protect_seq).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from fuzz.session import Session
from fuzz.strategies import STRATEGIES
from fuzz.worker import slice_rng
from model.variants import get_variant

PLANTED = f"{Path(__file__).resolve().parents[2] / 'tests' / 'planted.py'}:GupFastNoSeqcount"
SLICE_SECONDS = 10.0


def time_to_first(strategy: str, variant: str, seed: int, cap: float):
    """(executions, seconds, signature) to the first violation, or (runs, None, None)."""
    with tempfile.TemporaryDirectory(prefix="cowfuzz-bench-") as workdir:
        session = Session(get_variant(variant), variant, workdir)
        start = time.monotonic()
        runs = 0
        slice_no = 0
        try:
            while time.monotonic() - start < cap:
                slice_no += 1
                session.begin_slice(slice_no, min(SLICE_SECONDS, cap - (time.monotonic() - start)),
                                    None)
                STRATEGIES[strategy].run_slice(session, slice_rng(seed, 0, slice_no),
                                               {"seed": seed})
                if session.found:
                    f = session.found[0]
                    return runs + f.run, session.start + max(f.seconds, 0) - start, f.signature
                runs += session.runs
        finally:
            session.close()
        return runs, None, None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("strategies", nargs="*", default=list(STRATEGIES))
    ap.add_argument("--variant", default=PLANTED)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cap", type=float, default=120.0, help="seconds per (strategy, seed)")
    args = ap.parse_args(argv)
    print(f"variant {args.variant}; {args.seeds} seeds; cap {args.cap:g} s per run; one core")
    rows = []
    for name in args.strategies:
        execs, secs, found = [], [], 0
        for seed in range(1, args.seeds + 1):
            runs, seconds, sig = time_to_first(name, args.variant, seed, args.cap)
            found += seconds is not None
            execs.append(runs if seconds is not None else float("inf"))
            secs.append(seconds if seconds is not None else float("inf"))
            shown = "missed" if seconds is None else f"{runs} runs, {seconds:.1f} s"
            print(f"  {name:<11} seed {seed}: {shown}", flush=True)
        rows.append((name, found, statistics.median(execs), statistics.median(secs)))
    print()
    print(f"{'strategy':<11} {'found':>7} {'median execs':>13} {'median seconds':>15}")
    for name, found, e, s in rows:
        es = f">{args.cap:g}s" if e == float("inf") else f"{e:,.0f}"
        ss = f">{args.cap:g}" if s == float("inf") else f"{s:.1f}"
        print(f"{name:<11} {found:>3}/{args.seeds:<3} {es:>13} {ss:>15}")


if __name__ == "__main__":
    random.seed(0)
    main()
