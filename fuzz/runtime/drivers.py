"""Drivers: how a parked model task is suspended and resumed.

The Scheduler decides; a driver only carries out the decision.

* ``TrioDriver`` (the reference): every model thread is a trio task. A task
  that is not chosen sleeps in ``trio.lowlevel.wait_task_rescheduled``; the
  scheduler wakes exactly one with ``reschedule``. ``GateGuard``, a trio
  Instrument, fails the execution loudly if a model task ever takes a step
  while it is not the chosen one (a stray ``await`` that bypassed the gate).
* ``StepDriver`` (the fast one): the same coroutines, stepped by hand with
  ``coro.send(None)``; a park is a bare ``yield``. It is valid only because
  model code awaits nothing but the scheduler; the differential test keeps
  the two drivers producing identical traces.

Both run one *phase* at a time: all tasks spawned so far run to completion
(or until a verdict). A violation or model error stops the phase; the
remaining tasks are unwound (``close()`` / a ``_Teardown`` exception) so no
model code runs after the verdict.
"""

from __future__ import annotations

import types

import outcome
import trio

from fuzz.runtime.scheduler import DONE, Scheduler, Task


class GateBreach(RuntimeError):
    """A model task ran while the gate had chosen another one."""


class _Teardown(BaseException):
    """Thrown into parked trio tasks to unwind them after a verdict."""


@types.coroutine
def _suspend(task: Task):
    """A step-driven task parks: one bare yield, straight back to ``StepDriver.run``."""
    yield


def _first_live(sched: Scheduler) -> Task:
    for t in sched.tasks:
        if t.state != DONE:
            return t
    raise RuntimeError("no task to run")


class StepDriver:
    """Runs model coroutines by hand: ~30x cheaper than a trio switch."""

    def __init__(self, sched: Scheduler):
        self.sched = sched
        sched.driver = self

    def spawned(self, task: Task) -> None:
        pass

    def resume(self, task: Task) -> None:
        pass  # the run loop always sends into sched.current

    park = staticmethod(_suspend)

    def run(self) -> None:
        """Run every unfinished task to completion; verdicts propagate."""
        sched = self.sched
        sched.finished = False
        sched.current = _first_live(sched)
        try:
            while not sched.finished:
                task = sched.current
                coro = task.coro
                if coro is None:
                    coro = task.coro = task.factory()
                    task.started = True
                try:
                    coro.send(None)
                except StopIteration:
                    sched.task_done(task)
        finally:
            self._unwind()

    def _unwind(self) -> None:
        for t in self.sched.tasks:
            if t.coro is not None and t.state != DONE:
                t.coro.close()
                self.sched.set_state(t, DONE)


class _TrioData:
    __slots__ = ("trio_task", "parked")

    def __init__(self, trio_task):
        self.trio_task = trio_task
        self.parked = False


def _abort_fail(_raise_cancel):
    return trio.lowlevel.Abort.FAILED


class GateGuard(trio.abc.Instrument):
    """Fails the execution if a model task steps while it is not chosen."""

    def __init__(self):
        self.driver: "TrioDriver | None" = None
        self.tasks: dict = {}

    def before_task_step(self, trio_task) -> None:
        # A task registers itself during its first step (the check-and-park, which has
        # no model effect), so that step is not seen here; every later one is.
        task = self.tasks.get(trio_task)
        if task is None:
            return
        drv = self.driver
        if drv is None or drv.stopping:
            return
        if drv.sched.current is not task:
            drv.stop(GateBreach(f"{task.name} ran outside the gate while "
                                f"{drv.sched.current and drv.sched.current.name} was chosen"))


class TrioDriver:
    """Model threads as trio tasks, released one at a time."""

    def __init__(self, sched: Scheduler, guard: GateGuard):
        self.sched = sched
        sched.driver = self
        self.guard = guard
        self.nursery = None
        self.done = None
        self.error: BaseException | None = None
        self.stopping = False

    def spawned(self, task: Task) -> None:
        if self.nursery is not None:
            self.nursery.start_soon(self._main, task)

    def resume(self, task: Task) -> None:
        data = task.driver_data
        if data is not None and data.parked:
            data.parked = False
            trio.lowlevel.reschedule(data.trio_task)
        # else: it has not reached its first park yet and will see it is chosen

    async def park(self, task: Task) -> None:
        task.driver_data.parked = True
        await trio.lowlevel.wait_task_rescheduled(_abort_fail)

    def stop(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stopping = True
        self.done.set()

    async def run(self) -> None:
        """Run every unfinished task to completion inside the current trio run."""
        sched = self.sched
        sched.finished = False
        self.error = None
        self.stopping = False
        self.done = trio.Event()
        self.guard.driver = self
        sched.current = _first_live(sched)
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                for t in sched.tasks:
                    if t.state != DONE:
                        nursery.start_soon(self._main, t)
                await self.done.wait()
                self._unwind()
        finally:
            self.nursery = None
            self.guard.driver = None
            for t in sched.tasks:
                self.guard.tasks.pop(getattr(t.driver_data, "trio_task", None), None)
        if self.error is not None:
            raise self.error

    def _unwind(self) -> None:
        self.stopping = True
        for t in self.sched.tasks:
            data = t.driver_data
            if data is not None and data.parked and t.state != DONE:
                data.parked = False
                self.sched.set_state(t, DONE)
                trio.lowlevel.reschedule(data.trio_task, outcome.Error(_Teardown()))

    async def _main(self, task: Task) -> None:
        data = task.driver_data = _TrioData(trio.lowlevel.current_task())
        self.guard.tasks[data.trio_task] = task
        if self.stopping:
            return
        try:
            if self.sched.current is not task:
                await self.park(task)
            if self.stopping:
                return
            task.started = True
            await task.factory()
            nxt = self.sched.task_done(task)
            if nxt is None:
                self.done.set()
            else:
                self.resume(nxt)
        except _Teardown:
            return
        except BaseException as exc:  # verdicts and model errors end the phase
            self.stop(exc)
