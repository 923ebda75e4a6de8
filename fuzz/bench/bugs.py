"""The bug benchmark: ``cowfuzz bench``.

For every known-bug variant (one with ``expected_oracle``; "any" for the
designs known to break several oracles) and strategy, N trials with seeds
1..N, each from an empty corpus -- never from the hand-written reproducers --
on one core, until the first violation of the expected oracle that the
variant's base design does not show on the same program and schedule (a lost
write that reuse-refcount shows too is reuse-refcount's bug, not
clear-refs-read-lock's), or the budget. The bugs come in two tiers, by a
variant's ``tier`` attribute: the shallow tier (bugs a random walk finds
within a few thousand executions) and the deep tier (races a random walk needs
a median above 20,000 executions for, or misses within 60 s: most of
model/variants/mutants/ and one historical kernel); each is summarized and
plotted on its own. Reported per (variant, strategy): found rate, median and
p90 executions and seconds to the first violation (a miss counts as the
budget, so a p90 of ">budget" seconds, and "-" executions, means more than a
tenth missed). Every correct variant (no expected oracle) runs the budget once
per strategy and reports its executions and whatever it found. The exhaustive
strategy runs only where the bug's reproducer (``corpus/<variant>/`` in the
working directory) is small (at most 4 operations).

Trials run in a process pool (``--jobs``); the results go to JSON, a
Markdown table, and a plot of the fraction of (bug, trial) pairs found
against time.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import signal
import statistics
import sys
from pathlib import Path

from fuzz.bench.trials import run_trial
from fuzz.program.textcodec import read_program
from fuzz.search.procs import ignore_ctrl_c, signals_held
from model.variants import VARIANTS, declared_specs, load_designs

DEFAULT_STRATEGIES = ("coverage", "guided", "random", "pct", "pos", "surw", "exhaustive")
TIERS = ("shallow", "deep")
#: where the hand-written reproducers are (relative to the working directory, as the
#: campaign's default corpus is): their size decides where exhaustive search runs
CORPUS = Path("corpus")
#: the exhaustive strategy takes on bugs whose reproducer has at most this many operations
SMALL_REPRODUCER = 4


def tier(variant: str) -> str:
    """"shallow" or "deep" for a known bug, "clean" for a correct design."""
    cls = VARIANTS[variant]
    if cls.expected_oracle is None:
        return "clean"
    return getattr(cls, "tier", "shallow")


def reproducer_size(variant: str, corpus: Path = CORPUS) -> int | None:
    """Operations of the smallest hand-written reproducer, if the variant has one."""
    folder = corpus / variant
    sizes = []
    for path in sorted(folder.glob("*.cow")) if folder.is_dir() else ():
        try:
            sizes.append(read_program(path).op_count())
        except (OSError, ValueError):
            continue
    return min(sizes) if sizes else None


def plan(variants, strategies, trials: int, budget: float, corpus: Path = CORPUS) -> list[tuple]:
    """(variant, strategy, seed, budget, target) for every trial to run."""
    jobs = []
    for name in variants:
        target = VARIANTS[name].expected_oracle
        for strategy in strategies:
            if strategy == "exhaustive" and target is not None and \
                    (reproducer_size(name, corpus) or 99) > SMALL_REPRODUCER:
                continue
            for seed in range(1, (trials if target is not None else 1) + 1):
                jobs.append((name, strategy, seed, budget, target))
    return jobs


def _quantile(values, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def summarize(trials: list[dict], budget: float) -> list[dict]:
    rows = {}
    for t in trials:
        rows.setdefault((t["variant"], t["strategy"]), []).append(t)
    out = []
    for (variant, strategy), ts in rows.items():
        target = ts[0]["target"]
        row = {"variant": variant, "strategy": strategy, "target": target or "clean",
               "tier": ts[0].get("tier", "shallow" if target else "clean"),
               "trials": len(ts), "found": sum(t["found"] for t in ts)}
        if target is None:
            row["runs"] = sum(t["runs"] for t in ts)
            row["signature"] = next((t["signature"] for t in ts if t["signature"]), None)
        else:
            runs = [t["runs"] if t["found"] else math.inf for t in ts]
            secs = [t["seconds"] if t["found"] else math.inf for t in ts]
            row.update(median_runs=statistics.median(runs), p90_runs=_quantile(runs, 0.9),
                       median_seconds=statistics.median(secs), p90_seconds=_quantile(secs, 0.9))
        out.append(row)
    return out


def tier_summary(rows: list[dict], budget: float) -> list[dict]:
    """Per (tier, strategy): (bug, trial) pairs found, bugs found in at least 4 trials
    of 5 (80%), and the median over the tier's bugs of the median executions and
    seconds (a bug missed in most trials counts as infinite)."""
    out = []
    groups: dict[tuple, list] = {}
    for r in rows:
        if r["target"] != "clean":
            groups.setdefault((r["tier"], r["strategy"]), []).append(r)
    for (t, strategy), rs in sorted(groups.items(), key=lambda kv: (TIERS.index(kv[0][0])
                                                                   if kv[0][0] in TIERS else 9,
                                                                   kv[0][1])):
        out.append({"tier": t, "strategy": strategy, "bugs": len(rs),
                    "pairs": sum(r["found"] for r in rs), "trials": sum(r["trials"] for r in rs),
                    "bugs_80": sum(1 for r in rs if r["found"] >= 0.8 * r["trials"]),
                    "median_runs": statistics.median(r["median_runs"] for r in rs),
                    "median_seconds": statistics.median(r["median_seconds"] for r in rs)})
    return out


def markdown(rows: list[dict], budget: float, command: str) -> str:
    def runs(x):
        return "-" if x == math.inf else format(x, ",.0f")

    def seconds(x):
        return f">{budget:g}s" if x == math.inf else format(x, ".1f")
    lines = [f"Produced by `{command}`. A miss counts as the budget: \"-\" executions and "
             f"\">{budget:g}s\" where at least half (median) or a tenth (p90) of the trials "
             "missed."]
    summary = tier_summary(rows, budget)
    if summary:
        lines += ["", "| tier | strategy | (bug, trial) pairs found | bugs found in >= 80% "
                  "of trials | median over bugs of median execs | ... of median s |",
                  "|---|---|---|---|---|---|"]
        for s in summary:
            lines.append(f"| {s['tier']} | {s['strategy']} | {s['pairs']}/{s['trials']} | "
                         f"{s['bugs_80']}/{s['bugs']} | {runs(s['median_runs'])} | "
                         f"{seconds(s['median_seconds'])} |")
    bugs = [r for r in rows if r["target"] != "clean"]
    for t in sorted({r["tier"] for r in bugs}, key=lambda t: TIERS.index(t) if t in TIERS else 9):
        lines += ["", f"{t.capitalize()} tier:", "",
                  "| variant | oracle | strategy | found | median execs | p90 execs | "
                  "median s | p90 s |", "|---|---|---|---|---|---|---|---|"]
        for r in sorted((r for r in bugs if r["tier"] == t),
                        key=lambda r: (r["variant"], r["strategy"])):
            lines.append(f"| {r['variant']} | {r['target']} | {r['strategy']} | "
                         f"{r['found']}/{r['trials']} | {runs(r['median_runs'])} | "
                         f"{runs(r['p90_runs'])} | {seconds(r['median_seconds'])} | "
                         f"{seconds(r['p90_seconds'])} |")
    clean = [r for r in rows if r["target"] == "clean"]
    if clean:
        lines += ["", "Correct variants, one run of the whole budget per strategy:", "",
                  "| variant | strategy | executions | violations |", "|---|---|---|---|"]
        for r in sorted(clean, key=lambda r: (r["variant"], r["strategy"])):
            lines.append(f"| {r['variant']} | {r['strategy']} | {r['runs']:,} | "
                         f"{r['signature'] or 'none'} |")
    return "\n".join(lines) + "\n"


def _finite(row: dict) -> dict:
    """A missed median is infinite; JSON has no infinity, so it becomes null."""
    return {k: (None if v == math.inf else v) for k, v in row.items()}


def _run(job) -> dict:
    signal.signal(signal.SIGTERM, _leave)
    try:
        out = run_trial(*job).to_json()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    out["tier"] = tier(job[0])
    return out


def _leave(signum, frame) -> None:
    """The pool terminates its workers with SIGTERM: a trial running leaves by
    SystemExit, so it removes its temporary folder on the way out (an idle worker
    just ends)."""
    raise SystemExit(128 + signum)


def _start_worker(designs) -> None:
    ignore_ctrl_c()                  # Ctrl-C stops the benchmark, which stops the trials
    load_designs(designs)


def run(variants, strategies, trials: int, budget: float, jobs: int, progress=None) -> list:
    work = plan(variants, strategies, trials, budget)
    results = []
    ctx = multiprocessing.get_context("spawn")
    designs = tuple(declared_specs(VARIANTS[name] for name in variants))
    with signals_held():
        pool = ctx.Pool(jobs, initializer=_start_worker, initargs=(designs,))
    with pool:                       # leaving it terminates the trials still running
        for result in pool.imap_unordered(_run, work):
            results.append(result)
            if progress is not None:
                progress(len(results), len(work), result)
    results.sort(key=lambda t: (t["variant"], t["strategy"], t["seed"]))
    return results


def bench_main(args) -> int:
    """The ``cowfuzz bench`` command."""
    variants = args.variants or [n for n in VARIANTS]
    strategies = args.strategies or list(DEFAULT_STRATEGIES)
    if "exhaustive" in strategies and not CORPUS.is_dir():
        print(f"cowfuzz: no {CORPUS}/ in {Path.cwd()}: without the reproducers' sizes, "
              "exhaustive runs only on the correct variants", file=sys.stderr)

    def progress(done, total, t):
        what = f"{t['runs']:,} runs, {t['seconds']:.1f} s" if t["found"] else \
            (f"clean, {t['runs']:,} runs" if t["target"] is None else "missed")
        print(f"[{done}/{total}] {t['variant']} {t['strategy']} seed {t['seed']}: {what}",
              file=sys.stderr, flush=True)
    trials = run(variants, strategies, args.trials, args.budget, args.jobs, progress)
    rows = summarize(trials, args.budget)
    command = "cowfuzz bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "cowfuzz bench"
    table = markdown(rows, args.budget, command)
    if args.json:
        Path(args.json).write_text(json.dumps({"budget": args.budget, "trials": trials,
                                               "rows": [_finite(r) for r in rows]},
                                              indent=1, allow_nan=False))
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.plot:
        from fuzz.plot import plot_bug_benchmark
        plot_bug_benchmark([t for t in trials if t["target"] is not None], Path(args.plot),
                           args.budget, TIERS)
    sys.stdout.write(table)
    return 0

