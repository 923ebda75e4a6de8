"""Benchmark: executions/s of a standard program, and the cost of one scheduling decision.

    python -m fuzz.bench.executor [--seconds S]

The standard program has 3 threads of 10 operations each (stores, loads, a
fork, a pin, a pageout, an mprotect) under a fixed schedule with regular
preemptions. It runs on upstream with the hand-stepping executor (the fast
path), the trio executor (persistent loop, a fresh nursery per run), and
trio.run per input. Next to them: the floor, a bare trio run with the same
number of gated task switches and no model, and the per-decision cost of
the gate alone under both drivers.
"""

from __future__ import annotations

import argparse
import time

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
    args = ap.parse_args(argv)
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
