"""The gate scheduler: exactly one model task runs at any moment.

Model tasks are coroutines that park only at ``await sched.point(label)``
or inside a scheduler-aware primitive (``await sched.wait(...)``). At each
point the scheduler closes the step that just ended (records it in the
trace and runs the per-step checks), then asks the chooser which runnable
task goes next. A driver (``fuzz.runtime.drivers``) does the actual parking and
resuming: trio tasks for the reference executor, hand-stepped coroutines
for the fast one. Both see the same decisions, so both produce the same
trace.

Choice semantics (DESIGN.md "Schedule"): the runnable tasks are put in
rotation order starting at the current task; choice 0 keeps the current
task running and k picks the k-th runnable task after it. When the current
task cannot go on (it blocked or finished) rotation starts at the task
after it, so 0 still means "the least disruptive switch". A decision with
one runnable task consumes no choice, and an exhausted schedule means 0
forever: deleting choices never invalidates the rest.

Fault injection draws from the same stream: with injection on, every
``should_fail`` consumes one binary choice (1 = the allocation fails).

``Scheduler`` implements ``model.sched.Sched``, the protocol the model sees.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from model.changes import Change
from model.oracles.errors import Deadlock, Livelock

RUNNABLE = "runnable"
BLOCKED = "blocked"
DONE = "done"

#: Steps one execution may take before it is called a livelock.
DEFAULT_MAX_STEPS = 20_000


class Chooser(Protocol):
    """Picks the next task; ``runnable`` (a tuple) is in rotation order, index 0 = keep going."""

    def choose(self, n: int, label: str, runnable: Sequence["Task"] | None) -> int: ...


class Task:
    """One model thread (or the setup/teardown task) under the gate."""

    __slots__ = ("tid", "name", "state", "label", "factory", "coro", "waiting_on",
                 "user_wait", "ctx", "driver_data", "started", "exc", "in_op", "preempted")

    def __init__(self, tid: int, name: str, factory: Callable[[], Any]):
        self.tid = tid
        self.name = name
        self.state = RUNNABLE
        self.label = "task:start"
        self.factory = factory
        self.coro = None
        self.waiting_on = None      # the primitive a BLOCKED task waits on
        self.user_wait = False      # blocked in a user-level wait, not in the kernel
        self.ctx = ()               # (mm id, va) of the kernel path it is in, for traces
        self.driver_data = None
        self.started = False
        self.exc = None
        self.in_op = False          # inside a kernel operation (an RCU read side may be held)
        self.preempted = False      # another task ran while it sat at its last point

    def __repr__(self) -> str:
        return f"<Task {self.name} {self.state}>"


class Step:
    """One step: a task resumed at ``label`` and ran until its next point. ``changes``
    (``model.changes.Change`` tuples) and ``events`` are sequences never changed after
    the step closed."""

    __slots__ = ("index", "tid", "label", "ctx", "changes", "events")

    def __init__(self, index, tid, label, ctx, changes, events):
        self.index = index
        self.tid = tid
        self.label = label
        self.ctx = ctx
        self.changes = changes
        self.events = events


class EndOfExecution(BaseException):
    """Unwinds the running task when the execution has ended (verdict reached)."""


class Scheduler:
    """Decides who runs; records steps; detects deadlock and livelock."""

    def __init__(self, chooser: Chooser, *, max_steps: int = DEFAULT_MAX_STEPS,
                 fault_injection: bool = False):
        self.chooser = chooser
        self.max_steps = max_steps
        self.fault_injection = fault_injection
        self.tasks: list[Task] = []
        self.current: Task | None = None
        self.steps: list[Step] = []
        self.changes: list[Change] = []  # change log of the step in progress
        self.events: list = []           # events (op begin/end, block) of the step in progress
        self.choices: list[int] = []     # the effective choices made, in order
        # the runnable tasks in rotation order from each start, while no task changes state
        self._runnable: dict[int, tuple[Task, ...]] = {}
        self.after_step: Callable[[Step], None] | None = None
        self.driver = None
        self.finished = False

    # -- task management --------------------------------------------------
    def spawn(self, name: str, factory: Callable[[], Any]) -> Task:
        """Register a task; it becomes runnable at once and starts when chosen."""
        task = Task(len(self.tasks), name, factory)
        self.tasks.append(task)
        self._runnable.clear()
        if self.driver is not None:
            self.driver.spawned(task)
        return task

    # -- the two ways a task leaves the CPU --------------------------------
    async def point(self, label: str) -> None:
        """A scheduling point: any runnable task may run next.

        The hottest path of an execution: ``_close_step`` and ``_pick`` are written out
        here once more, flat."""
        cur = self.current
        changes = self.changes
        if changes:
            self.changes = []
        else:
            changes = ()
        events = self.events
        if events:
            self.events = []
        else:
            events = ()
        steps = self.steps
        step = Step(len(steps), cur.tid, cur.label, cur.ctx, changes, events)
        steps.append(step)
        if self.after_step is not None:
            self.after_step(step)
        if len(steps) >= self.max_steps:
            raise Livelock(f"step budget of {self.max_steps} steps exhausted",
                           step=step.index)
        cur.label = label
        start = cur.tid if cur.state is RUNNABLE else cur.tid + 1
        runnable = self._runnable.get(start)
        if runnable is None:
            runnable = self._rotation(start)
        n = len(runnable)
        if n == 1:
            nxt = runnable[0]
            if nxt is cur:
                cur.preempted = False
                return                  # only the running task: no decision
        elif n:
            k = self.chooser.choose(n, label, runnable) % n
            self.choices.append(k)
            nxt = runnable[k]
        else:
            self._nobody_runnable()
        self.current = nxt
        cur.preempted = nxt is not cur
        if cur.preempted:
            driver = self.driver
            driver.resume(nxt)
            await driver.park(cur)

    async def wait(self, primitive: Any, label: str, *, user: bool = False) -> None:
        """Block the current task on ``primitive`` until ``wake_all(primitive)``."""
        cur = self.current
        self.set_state(cur, BLOCKED)
        cur.waiting_on = primitive
        cur.user_wait = user
        primitive.waiters.append(cur)
        self.events.append(("block", label))
        self._close_step(cur)
        cur.label = label
        cur.preempted = False
        nxt = self._pick(cur)
        driver = self.driver
        driver.resume(nxt)
        await driver.park(cur)

    def wake_all(self, primitive: Any) -> None:
        """Make every task blocked on ``primitive`` runnable again (they retry)."""
        waiters = primitive.waiters
        if waiters:
            for t in waiters:
                if t.state == BLOCKED:        # not a task unwound after the phase ended
                    self.set_state(t, RUNNABLE)
                    t.waiting_on = None
                    t.user_wait = False
            primitive.waiters = []

    def should_fail(self, label: str) -> bool:
        """Fault injection: may this allocation fail? Consumes a choice when enabled."""
        if not self.fault_injection:
            return False
        k = self.chooser.choose(2, label, None) % 2
        self.choices.append(k)
        if k:
            self.events.append(("inject", label))
        return bool(k)

    def need_resched(self) -> bool:
        """TIF_NEED_RESCHED of the running task: the schedule switched away from it at its
        last point (another task ran meanwhile). Consumes no choice."""
        return self.current.preempted

    def log(self, obj: Any, field: str, old: Any, new: Any) -> None:
        """Record a state change of the running step (a ``model.changes.Change``)."""
        self.changes.append((obj, field, None, old, new))

    def log_at(self, obj: Any, field: str, index: Any, old: Any, new: Any) -> None:
        """Record a change of element ``index`` of an array-like field."""
        self.changes.append((obj, field, index, old, new))

    def note(self, *event: Any) -> None:
        """Attach an event (operation start/result) to the running step."""
        self.events.append(event)

    # -- internals ----------------------------------------------------------
    # The per-step path (point -> _close_step -> _pick) runs a few hundred times per
    # execution: it allocates one Step and nothing else when a step changed nothing.
    def _close_step(self, task: Task) -> None:
        changes = self.changes
        if changes:
            self.changes = []
        else:
            changes = ()
        events = self.events
        if events:
            self.events = []
        else:
            events = ()
        steps = self.steps
        step = Step(len(steps), task.tid, task.label, task.ctx, changes, events)
        steps.append(step)
        if self.after_step is not None:
            self.after_step(step)
        if len(steps) >= self.max_steps:
            raise Livelock(f"step budget of {self.max_steps} steps exhausted",
                           step=step.index)

    def set_state(self, task: Task, state: str) -> None:
        """Every change of a task's state goes through here (the runnable sets are cached)."""
        task.state = state
        self._runnable.clear()

    def _rotation(self, start: int) -> tuple[Task, ...]:
        tasks = self.tasks
        i = start % len(tasks)
        runnable = []
        for t in tasks[i:] + tasks[:i]:
            if t.state is RUNNABLE:
                runnable.append(t)
        runnable = self._runnable[start] = tuple(runnable)
        return runnable

    def _pick(self, cur: Task) -> Task:
        """The next task: the runnable ones in rotation order from ``cur`` (from the task
        after it when it cannot go on), the chooser's pick among them."""
        start = cur.tid if cur.state is RUNNABLE else cur.tid + 1
        runnable = self._runnable.get(start)
        if runnable is None:
            runnable = self._rotation(start)
        n = len(runnable)
        if n == 1:
            nxt = runnable[0]
        elif n:
            k = self.chooser.choose(n, cur.label, runnable) % n
            self.choices.append(k)
            nxt = runnable[k]
        else:
            self._nobody_runnable()
        self.current = nxt
        return nxt

    def _nobody_runnable(self):
        blocked = [t for t in self.tasks if t.state == BLOCKED]
        in_kernel = [t for t in blocked if not t.user_wait]
        if in_kernel:
            who = ", ".join(f"{t.name} on {t.label}" for t in in_kernel)
            raise Deadlock(f"no runnable task; blocked in the kernel: {who}",
                           step=len(self.steps) - 1)
        # Everybody left is waiting in user space for an event that will not
        # come: the program is stuck, not the kernel. End quietly.
        raise EndOfExecution("stuck")

    def run_alone(self, name: str, factory: Callable[[], Any]) -> None:
        """Run one task (setup, teardown) to completion outside any driver: with no other
        task runnable it never parks."""
        task = self.spawn(name, factory)
        self.current = task
        coro = factory()
        task.coro = coro
        try:
            coro.send(None)
        except StopIteration:
            self.set_state(task, DONE)
            self.events.append(("done",))
            self._close_step(task)
            return
        coro.close()
        raise RuntimeError(f"{name} task parked while running alone")

    def task_done(self, task: Task) -> Task | None:
        """Called by the driver when a task's coroutine returned; picks the next."""
        self.set_state(task, DONE)
        self.events.append(("done",))
        self._close_step(task)
        if all(t.state == DONE for t in self.tasks):
            self.current = None
            self.finished = True
            return None
        return self._pick(task)

    def schedule(self) -> tuple[int, ...]:
        """The effective choices, trailing zeros dropped (they are implied)."""
        c = self.choices
        end = len(c)
        while end and c[end - 1] == 0:
            end -= 1
        return tuple(c[:end])
