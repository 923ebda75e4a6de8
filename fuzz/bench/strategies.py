"""Benchmark: how fast each search strategy finds the planted bug.

    python -m fuzz.bench.strategies [--variant V] [--seeds 5] [--cap 120] [STRATEGY...]

For each strategy and seed, one trial (fuzz/bench/trials.py: the
campaign's worker code path on one core) runs until the first violation or
the cap. The table shows the median executions and seconds over the seeds;
a trial that hit the cap counts as the cap, so ">cap" means most seeds
missed. The default variant is the planted bug of fuzz/bench/planted.py (GUP-fast
without write_protect_seq). ``cowfuzz bench`` does the same over every
known-bug variant.
"""

from __future__ import annotations

import argparse
import statistics

from fuzz.bench.trials import run_trial
from fuzz.search.strategies import STRATEGIES

PLANTED = "fuzz.bench.planted:GupFastNoSeqcount"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("strategies", nargs="*", default=list(STRATEGIES))
    ap.add_argument("--variant", default=PLANTED)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cap", type=float, default=120.0, help="seconds per (strategy, seed)")
    args = ap.parse_args(argv)
    from model.variants import load_design
    args.variant = load_design(args.variant).name
    print(f"variant {args.variant}; {args.seeds} seeds; cap {args.cap:g} s per run; one core")
    rows = []
    for name in args.strategies:
        execs, secs, found = [], [], 0
        for seed in range(1, args.seeds + 1):
            t = run_trial(args.variant, name, seed, args.cap, "any")
            found += t.found
            execs.append(t.runs if t.found else float("inf"))
            secs.append(t.seconds if t.found else float("inf"))
            shown = f"{t.runs} runs, {t.seconds:.1f} s" if t.found else "missed"
            print(f"  {name:<11} seed {seed}: {shown}", flush=True)
        rows.append((name, found, statistics.median(execs), statistics.median(secs)))
    print()
    print(f"{'strategy':<11} {'found':>7} {'median execs':>13} {'median seconds':>15}")
    for name, found, e, s in rows:
        es = f">{args.cap:g}s" if e == float("inf") else f"{e:,.0f}"
        ss = f">{args.cap:g}" if s == float("inf") else f"{s:.1f}"
        print(f"{name:<11} {found:>3}/{args.seeds:<3} {es:>13} {ss:>15}")


if __name__ == "__main__":
    main()
