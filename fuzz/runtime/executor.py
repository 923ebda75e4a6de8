"""Executor: runs a Program on a variant under the gate scheduler -> Outcome.

One execution has three phases:

1. setup (one task, no choices): process 0, its file, its initial mappings,
   populated by writes/reads/pageout as the Program asks;
2. the concurrent phase: every thread is a task; a fork that completes
   spawns the child's threads; each thread's operations run in order and
   its exit tears the process down when it is the last one;
3. teardown (one task): threads left waiting in user space are killed, then
   the final accounting check (everything freed).

Every exception inside the model becomes an outcome: a ``Violation`` is a
finding, anything else a model error; nothing escapes into the caller.
The same program, variant and driver give the same trace, bit for bit.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field

import trio

from fuzz.runtime.choosers import ReplayChooser
from fuzz.runtime.drivers import GateBreach, GateGuard, StepDriver, TrioDriver
from fuzz.runtime.features import FeatureCollector
from fuzz.program.ops import OPERATIONS
from fuzz.program.program import Program
from fuzz.runtime.scheduler import DEFAULT_MAX_STEPS, EndOfExecution, Scheduler
from fuzz.runtime.trace import Trace
from model.oracles.errors import Violation
from model.mm import Process

OK = "ok"
VIOLATION = "violation"
MODEL_ERROR = "model-error"


@dataclass
class Outcome:
    verdict: str                       # ok | violation | model-error
    trace: Trace
    schedule: tuple[int, ...] = ()     # the choices actually taken (trailing zeros dropped)
    violation: Violation | None = None
    error: str | None = None           # model error: the traceback
    stuck: bool = False                # threads were left waiting in user space
    decisions: int = 0                 # scheduling decisions with a real choice
    features: set = field(default_factory=set)   # interleaving features (fuzz/runtime/features.py)
    points: set = field(default_factory=set)     # scheduling points reached

    @property
    def oracle(self) -> str | None:
        return self.violation.oracle if self.violation is not None else None

    @property
    def failed(self) -> bool:
        return self.verdict != OK

    @property
    def status(self) -> str:
        """The verdict as ``expect`` lines spell it: "clean", the oracle that fired, or
        "model-error"."""
        if self.violation is not None:
            return self.violation.oracle
        return "clean" if self.verdict == OK else self.verdict


def thread_name(pid: int, i: int) -> str:
    """The task name of the i-th thread of process ``pid`` (its ThreadSpec's place)."""
    return f"P{pid}.T{i}"


class Run:
    """The state of one execution: kernel, scheduler, and the program's processes."""

    def __init__(self, program: Program, variant_cls, chooser, max_steps: int):
        self.program = program
        self.sched = Scheduler(chooser, max_steps=max_steps,
                               fault_injection=program.fault_injection)
        self.kernel = variant_cls(self.sched)
        self.procs: dict[int, Process] = {}
        self.threads_of = {}
        for spec in program.threads:
            self.threads_of.setdefault(spec.pid, []).append(spec)
        self.threads = []            # (model Thread, ThreadSpec) in creation order
        self.stuck = False           # the concurrent phase ended with threads waiting in user space

    # -- task bodies -------------------------------------------------------------
    async def setup(self) -> None:
        k = self.kernel
        prog = self.program
        k.create_file("f", prog.file_pages)
        k.swapon(prog.swap)
        mm = k.new_mm()
        proc = k.create_process(None, mm, 0)
        self.procs[0] = proc
        self._create_threads(proc)
        thread = proc.threads[0]
        for m in prog.mappings:
            await k.mmap_write_lock(mm, "setup:mmap")
            ret = await k.do_mmap(mm, m.va, m.npages, m.kind, m.prot, k.files["f"], m.pgoff)
            k.mmap_write_unlock(mm)
            k.sched.note("setup", f"mmap {m.va} {m.npages} {m.kind} {m.prot} pgoff={m.pgoff}", ret)
            if ret or m.populate == "none":
                continue
            for va in range(m.va, m.va + m.npages):
                if m.populate == "read":
                    await k.op_read(thread, va)
                else:
                    await k.op_write(thread, va)
            if m.populate == "swap":
                await k.op_pageout(thread, m.va, m.npages)

    def _create_threads(self, proc: Process) -> None:
        specs = self.threads_of.get(proc.pid) or [None]
        for i, spec in enumerate(specs):
            thread = self.kernel.create_thread(proc, thread_name(proc.pid, i))
            self.threads.append((thread, spec))

    def _spawn(self, thread, spec) -> None:
        self.sched.spawn(thread.name, lambda: self.thread_main(thread, spec))

    async def thread_main(self, thread, spec) -> None:
        k = self.kernel
        sched = self.sched
        proc = thread.process
        task = sched.current
        for op in (spec.ops if spec is not None else ()):
            if proc.exiting:
                break
            sched.note("op", op.text)
            task.in_op = True
            try:
                operation = OPERATIONS[op.name]
            except KeyError:      # a Program built in code may name anything
                raise ValueError(f"unknown operation {op.name!r}") from None
            ret = await operation.call(k, thread, op.args)
            task.in_op = False
            k.rcu_quiescent(task)
            if isinstance(ret, Process):
                self._forked(ret)
                ret = ret.pid
            if operation.value and isinstance(ret, int) and ret >= 0:
                sched.note("ret", op.name, k.spec.describe(ret), ret)
            else:
                sched.note("ret", op.name, ret)
        task.in_op = True
        await k.thread_exit(thread)
        task.in_op = False
        k.rcu_quiescent(task)

    def _forked(self, child: Process) -> None:
        self.procs[child.pid] = child
        n = len(self.threads)
        self._create_threads(child)
        for thread, spec in self.threads[n:]:
            self._spawn(thread, spec)

    def release(self) -> None:
        """Cut the references that tie this execution's scheduler, driver, tasks and
        kernel into cycles, so that they are freed as soon as the execution ends. Left
        to the cyclic collector, they would keep the whole trace with them in its older
        generations, and the collector would walk it again and again (about a seventh
        of an execution's time). The outcome does not refer to any of them."""
        sched = self.sched
        sched.driver = None
        sched.after_step = None
        for task in sched.tasks:
            task.factory = task.coro = task.driver_data = None
        self.kernel.spec = None

    async def teardown(self, killed) -> None:
        k = self.kernel
        for thread in killed:
            k.sched.note("killed", thread.name)
            await k.thread_exit(thread)
        k.check_all_freed()


def _finish(run: Run, exc: BaseException | None) -> Outcome:
    sched = run.sched
    trace = Trace.from_scheduler(sched, run.program)
    decisions = len(sched.choices)
    if exc is None:
        return Outcome(OK, trace, sched.schedule(), decisions=decisions, stuck=run.stuck)
    if isinstance(exc, Violation):
        if exc.step is None:
            exc.step = max(len(sched.steps) - 1, 0)
        trace.verdict = str(exc)
        return Outcome(VIOLATION, trace, sched.schedule(), violation=exc, decisions=decisions)
    err = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    trace.verdict = f"model error: {type(exc).__name__}: {exc}"
    return Outcome(MODEL_ERROR, trace, sched.schedule(), error=err, decisions=decisions)


def _killed_threads(run: Run):
    return [t for t, _ in run.threads if t in t.process.mm.threads]


def _install_checks(run: Run, features: bool):
    """After every step: the oracles, then (optionally) the feature collector, then the
    chooser's ``observe(step)`` if it has one (choosers that decide from what the tasks
    did, as POS does)."""
    hooks = [run.kernel.after_step]
    collector = None
    if features:
        collector = FeatureCollector()
        hooks.append(collector.observe)
    chooser_observe = getattr(run.sched.chooser, "observe", None)
    if chooser_observe is not None:
        hooks.append(chooser_observe)
    if len(hooks) == 1:
        run.sched.after_step = hooks[0]
    elif len(hooks) == 2:
        first, second = hooks

        def after_step(step):
            first(step)
            second(step)
        run.sched.after_step = after_step
    else:
        def after_step(step):
            for hook in hooks:
                hook(step)
        run.sched.after_step = after_step
    return collector


async def _phases(run: Run, concurrent_phase) -> Outcome:
    """The one phase loop of both drivers: setup alone, then every thread under the
    driver (``await concurrent_phase()``), then teardown alone. Every model failure
    becomes the outcome."""
    try:
        return await _run_phases(run, concurrent_phase)
    finally:
        run.release()


async def _run_phases(run: Run, concurrent_phase) -> Outcome:
    sched = run.sched
    try:
        sched.run_alone("setup", run.setup)
        for thread, spec in list(run.threads):
            run._spawn(thread, spec)
        try:
            await concurrent_phase()
        except EndOfExecution:
            run.stuck = True
        sched.run_alone("teardown", lambda: run.teardown(_killed_threads(run)))
    except BaseException as exc:   # every model failure becomes an outcome
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return _finish(run, exc)
    return _finish(run, None)


def execute(program: Program, variant_cls, chooser=None, *,
            max_steps: int = DEFAULT_MAX_STEPS, features: bool = False) -> Outcome:
    """Run ``program`` on ``variant_cls`` with the fast (hand-stepping) driver."""
    run = Run(program, variant_cls, chooser or ReplayChooser(program.schedule), max_steps)
    collector = _install_checks(run, features)

    async def concurrent_phase():
        StepDriver(run.sched).run()     # never suspends: the phase loop runs straight through

    phases = _phases(run, concurrent_phase)
    try:
        phases.send(None)
    except StopIteration as done:
        outcome = done.value
    else:
        phases.close()
        raise RuntimeError("the step executor's phase loop suspended")
    if collector is not None:
        outcome.features = collector.features
        outcome.points = collector.points
    return outcome


class TrioExecutor:
    """The reference executor: model threads are trio tasks in a persistent trio loop.

    The loop runs in a daemon thread; each ``run`` opens a fresh nursery in it
    (a trio.run per input costs ~310 us; reusing the loop saves most of it).
    """

    def __init__(self):
        self.guard = GateGuard()
        self._token = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="cowfuzz-trio", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _serve(self) -> None:
        async def host():
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await trio.sleep_forever()
        trio.run(host, instruments=[self.guard])

    def run(self, program: Program, variant_cls, chooser=None, *,
            max_steps: int = DEFAULT_MAX_STEPS, hang_timeout: float = 30.0) -> Outcome:
        return trio.from_thread.run(self.run_async, program, variant_cls, chooser, max_steps,
                                    hang_timeout, trio_token=self._token)

    async def run_async(self, program, variant_cls, chooser=None, max_steps=DEFAULT_MAX_STEPS,
                        hang_timeout: float = 30.0):
        """One execution. ``hang_timeout`` (wall clock) only catches a model that blocks
        in trio instead of the gate, which would otherwise hang the loop for ever."""
        run = Run(program, variant_cls, chooser or ReplayChooser(program.schedule), max_steps)
        _install_checks(run, False)

        async def concurrent_phase():
            driver = TrioDriver(run.sched, self.guard)
            try:
                with trio.fail_after(hang_timeout):
                    await driver.run()
            except trio.TooSlowError:
                raise GateBreach(f"no progress for {hang_timeout}s: a model task blocked "
                                 "outside the gate (awaiting something other than the "
                                 "scheduler)") from None

        return await _phases(run, concurrent_phase)
