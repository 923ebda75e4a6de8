"""Benchmark: executions/s of a standard program, and the cost of one scheduling decision.

    python -m fuzz.bench.executor [--seconds S]
    python -m fuzz.bench.executor --against REV [--repeat N] [--seconds S]

The standard program has 3 threads of 10 operations each (stores, loads, a
fork, a pin, a pageout, an mprotect) under a fixed schedule with regular
preemptions. It runs on upstream with the hand-stepping executor (the fast
path), the trio executor (persistent loop, a fresh nursery per run), and
trio.run per input. Next to them: the floor, a bare trio run with the same
number of gated task switches and no model, and the per-decision cost of
the gate alone under both drivers.

``--against REV`` compares this working tree with git revision REV (same
package layout) side by side: REV is exported to a temporary directory, and
each of ``--repeat`` rounds measures both trees, each in a fresh process, in
alternating order, so that a noisy machine slows both alike. Rates are
executions per second of CPU time (the measuring process's, trio's loop
thread included); it prints min, median and max over the rounds, the ratio of
the medians, and whether both trees give the same trace.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from fuzz.runtime.choosers import ReplayChooser
from fuzz.runtime.executor import TrioExecutor, execute
from fuzz.runtime.drivers import StepDriver
from fuzz.program.program import Mapping, Op, Program, ThreadSpec
from fuzz.runtime.scheduler import Scheduler
from model.kernel import Kernel


def standard_program() -> Program:
    o = lambda n, *a: Op(n, a)  # noqa: E731
    t0 = (o("write", 0), o("write", 1), o("fork", 1), o("write", 0), o("read", 1),
          o("pin", 0, 2, "rw", "fast", "longterm"), o("write", 2), o("devread", 0),
          o("unpin", 0), o("read", 0))
    t1 = (o("read", 0), o("write", 3), o("mprotect", 0, 2, "r"), o("mprotect", 0, 2, "rw"),
          o("write", 1), o("pageout", 3, 1), o("read", 3), o("write", 3), o("read", 2),
          o("read", 1))
    t2 = (o("write", 0), o("read", 0), o("write", 1), o("read", 1), o("write", 2),
          o("read", 2), o("dontneed", 3, 1), o("write", 3), o("read", 3), o("read", 0))
    threads = (ThreadSpec(0, t0), ThreadSpec(0, t1), ThreadSpec(0, t2), ThreadSpec(1, ()))
    schedule = tuple((i % 5 == 4) * (1 + i % 2) for i in range(60))
    return Program((Mapping(0, 4, "anon", "rw", populate="write"),), threads, schedule)


def _rate(fn, seconds: float):
    n = 0
    start = time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def _cpu_rate(fn, seconds: float) -> float:
    n = 0
    start = time.process_time()
    while True:
        fn()
        n += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return n / elapsed


def measure(seconds: float) -> dict:
    """One round in this process: exec/s (CPU time) of both executors, and the trace hash.
    Uses only what every revision with this layout has, so that ``--against`` can run
    this very function on an older tree."""
    prog = standard_program()
    trace = execute(prog, Kernel).trace.render_text()
    execute(prog, Kernel)
    tx = TrioExecutor()
    tx.run(prog, Kernel)
    return {"step": _cpu_rate(lambda: execute(prog, Kernel), seconds),
            "trio": _cpu_rate(lambda: tx.run(prog, Kernel), seconds),
            "trace": hashlib.sha256(trace.encode()).hexdigest()[:16]}


def _export(rev: str, dest: Path) -> None:
    """Revision ``rev`` of the git checkout in the working directory, into ``dest``."""
    proc = subprocess.run(["git", "archive", rev], capture_output=True)
    if proc.returncode:
        raise SystemExit(f"cowfuzz: cannot export {rev} (run this from a git checkout of "
                         f"cowfuzz): {proc.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=proc.stdout, check=True)


def _measure_tree(tree: Path, seconds: float) -> dict:
    """``measure`` in a fresh process that imports fuzz and model from ``tree``."""
    code = ("import json, runpy, sys; m = runpy.run_path(sys.argv[1]); "
            "print(json.dumps(m['measure'](float(sys.argv[2]))))")
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", code, __file__, str(seconds)], env=env,
                         cwd=tree, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(rev: str, repeat: int, seconds: float) -> None:
    """Old (REV) and new (this tree) side by side, ``repeat`` rounds each."""
    new_tree = Path(__file__).resolve().parents[2]      # where this fuzz package lives
    with tempfile.TemporaryDirectory(prefix="cowfuzz-against-") as tmp:
        old_tree = Path(tmp)
        _export(rev, old_tree)
        rounds = {"old": [], "new": []}
        for i in range(repeat):
            order = (("old", old_tree), ("new", new_tree))
            for name, tree in (order if i % 2 == 0 else order[::-1]):
                rounds[name].append(_measure_tree(tree, seconds))
                r = rounds[name][-1]
                print(f"round {i + 1} {name}: step {r['step']:.0f}/s, trio {r['trio']:.0f}/s",
                      file=sys.stderr, flush=True)
    print(f"standard program, {repeat} rounds of {seconds:g} s CPU per executor; old = {rev}")
    print(f"{'executor':<8} {'tree':<4} {'min':>7} {'median':>7} {'max':>7}   exec/s (CPU)")
    for key in ("step", "trio"):
        med = {}
        for name in ("old", "new"):
            rates = [r[key] for r in rounds[name]]
            med[name] = statistics.median(rates)
            print(f"{key:<8} {name:<4} {min(rates):>7.0f} {med[name]:>7.0f} {max(rates):>7.0f}")
        print(f"{key:<8} new/old median: {med['new'] / med['old']:.2f}x")
    traces = {r["trace"] for name in rounds for r in rounds[name]}
    print("same trace in both trees:", "yes" if len(traces) == 1 else f"NO ({sorted(traces)})")


def gate_only_step(tasks: int, points: int, choices) -> int:
    """The gate alone, hand-stepped: ``tasks`` tasks x ``points`` points, no model."""
    sched = Scheduler(ReplayChooser(choices))
    StepDriver(sched)

    async def body():
        for _ in range(points):
            await sched.point("bench:point")

    for i in range(tasks):
        sched.spawn(str(i), body)
    sched.driver.run()
    return len(sched.steps)


async def bare_trio_switches(switches: int) -> None:
    """The floor: trio tasks handing one token around with wait_task_rescheduled/reschedule."""
    tasks = []
    done = trio.Event()
    state = {"left": switches, "next": 0}

    async def worker(i):
        tasks.append(trio.lowlevel.current_task())
        while True:
            await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
            if state["left"] <= 0:
                return
            state["left"] -= 1
            nxt = (i + 1) % 3
            if state["left"] <= 0:
                done.set()
                for t in tasks:
                    if t is not trio.lowlevel.current_task():
                        trio.lowlevel.reschedule(t)
                return
            trio.lowlevel.reschedule(tasks[nxt])

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(worker, i)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.reschedule(tasks[0])
        await done.wait()


def main(argv=None) -> None:
    import trio.testing  # noqa: F401  (wait_all_tasks_blocked)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--against", metavar="REV",
                    help="compare with git revision REV, side by side")
    ap.add_argument("--repeat", type=int, default=5, help="rounds with --against")
    args = ap.parse_args(argv)
    if args.against:
        compare(args.against, args.repeat, args.seconds)
        return
    prog = standard_program()
    ref = execute(prog, Kernel)
    steps = len(ref.trace.steps)
    switches = sum(1 for a, b in zip(ref.trace.steps, ref.trace.steps[1:]) if a.tid != b.tid)
    print(f"standard program: 3 threads x 10 ops, {steps} steps, {ref.decisions} decisions, "
          f"{switches} task switches, verdict {ref.verdict}")
    tx = TrioExecutor()
    rows = []
    rows.append(("step executor (hand-stepped coroutines)",
                 _rate(lambda: execute(prog, Kernel), args.seconds)))
    rows.append(("trio executor (persistent loop)",
                 _rate(lambda: tx.run(prog, Kernel), args.seconds)))

    def per_run():
        async def one():
            return await tx.run_async(prog, Kernel)
        return trio.run(one)
    rows.append(("trio executor (trio.run per input)", _rate(per_run, args.seconds)))
    rows.append((f"floor: bare trio, {switches} gated switches, no model",
                 _rate(lambda: trio.run(bare_trio_switches, switches), args.seconds)))
    print(f"\n{'executor':<52} {'exec/s':>10}")
    for name, rate in rows:
        print(f"{name:<52} {rate:>10.0f}")

    n = 3 * 2000
    choices = tuple((i % 3 == 0) * 1 for i in range(n))
    t = time.perf_counter()
    steps = gate_only_step(3, 2000, choices)
    step_cost = (time.perf_counter() - t) / steps
    t = time.perf_counter()
    trio.run(bare_trio_switches, 6000)
    trio_cost = (time.perf_counter() - t) / 6000
    model_cost = 1 / rows[0][1] / ref.decisions if ref.decisions else float("nan")
    print(f"\none scheduling decision, gate alone, hand-stepped:   {step_cost * 1e6:7.2f} us")
    print(f"one gated task switch, bare trio:                    {trio_cost * 1e6:7.2f} us")
    print(f"model time per decision (step executor, standard):   {model_cost * 1e6:7.2f} us")


if __name__ == "__main__":
    main()
