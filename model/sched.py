"""What the model may use of the scheduler: the ``Sched`` protocol.

The kernel model runs under a gate scheduler (fuzz/runtime/scheduler.py
implements it) that lets exactly one model task run at a time. ``model``
never imports ``fuzz``: the model sees the scheduler only through the
members listed here, and ``Kernel.sched`` is typed with this protocol.

* Scheduling: ``await point(label)`` is a place where another task may run;
  ``await wait(primitive, label)`` blocks the running task on a lock-like
  ``primitive`` (anything with a ``waiters`` list) until ``wake_all(primitive)``.
  A kernel path that can be interleaved is ``async``; plain ``def`` is atomic.
* Recording: every state change is logged with ``log`` (a plain field) or
  ``log_at`` (an element of an array-like field), as a ``Change``
  (model/changes.py), before the next point; ``note`` attaches an event
  (an operation starting or returning) to the running step.
* Fault injection: ``should_fail(label)`` says whether this allocation fails.
* ``need_resched()``: whether the schedule preempted the running task at its last point.
* Reading: ``current`` is the running task, ``tasks`` every task so far (for
  RCU: who is inside a kernel operation), ``steps`` the steps so far (its
  length is the logical time of the value oracles).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable


class Waitable(Protocol):
    """A primitive tasks can block on (SpinLock, RwSemaphore, Folio, UserEvent)."""

    waiters: list


class SchedTask(Protocol):
    """What the model reads and writes of a task."""

    tid: int
    name: str
    #: inside a kernel operation (an RCU read side may be held)
    in_op: bool
    #: (mm id, va) of the kernel path the task is in, for traces; the model writes it
    ctx: tuple


@runtime_checkable
class Sched(Protocol):
    """The scheduler as the model sees it."""

    current: SchedTask | None
    tasks: Sequence[SchedTask]
    steps: Sequence[Any]

    async def point(self, label: str) -> None:
        """A scheduling point labelled "<kernel function>:<what>": any task may run next."""

    async def wait(self, primitive: Waitable, label: str, *, user: bool = False) -> None:
        """Block until ``wake_all(primitive)``; ``user``: a wait in user space, not the
        kernel (only such waiters left is a stuck program, not a deadlock)."""

    def wake_all(self, primitive: Waitable) -> None:
        """Every task blocked on ``primitive`` becomes runnable (each retries)."""

    def should_fail(self, label: str) -> bool:
        """Fault injection: does this allocation fail?"""

    def need_resched(self) -> bool:
        """need_resched() for the running task: whether the schedule switched away from it
        at its last point. A kernel loop that breaks out on need_resched() (zap_pte_range)
        does so exactly when the schedule preempted it there; no choice is consumed."""

    def log(self, obj: Any, field: str, old: Any, new: Any) -> None:
        """``obj.field`` changed from ``old`` to ``new`` in the running step."""

    def log_at(self, obj: Any, field: str, index: Any, old: Any, new: Any) -> None:
        """Element ``index`` of ``obj.field`` changed from ``old`` to ``new``."""

    def note(self, *event: Any) -> None:
        """Attach an event to the running step."""
