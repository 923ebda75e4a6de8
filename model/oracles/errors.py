"""Verdicts the model can raise.

A ``Violation`` is a finding: an oracle saw the model break an invariant.
Anything else raised inside the model is a bug of the model itself and is
reported as a model error, never as a finding.
"""

from __future__ import annotations


class Violation(Exception):
    """An oracle fired. ``oracle`` names it; ``objects`` names what it saw."""

    oracle = "violation"

    def __init__(self, message: str, *, step: int | None = None, **objects):
        super().__init__(message)
        self.message = message
        self.step = step
        self.objects = objects

    def __str__(self) -> str:
        objs = " ".join(f"{k}={v}" for k, v in self.objects.items())
        return f"{self.oracle}: {self.message}" + (f" [{objs}]" if objs else "")


class WritableShared(Violation):
    """Oracle 1: a writable PTE, TLB entry or FOLL_WRITE reference to a shared page."""
    oracle = "writable-shared"


class PinIncoherent(Violation):
    """Oracle 2: a pinned page and the page table disagree."""
    oracle = "pin-coherence"


class IsolationBreach(Violation):
    """Oracle 3: a process saw a value another process wrote after their fork."""
    oracle = "isolation"


class ForkSnapshot(Violation):
    """Oracle 3: a child's memory after fork is not the parent's memory within the fork."""
    oracle = "fork-snapshot"


class ForkWindow(Violation):
    """Oracle 3: a page fault changed a VMA's page table while fork had it write-locked."""
    oracle = "fork-window"


class LostWrite(Violation):
    """Oracle 3: a completed store is not seen by a later load of the same mm."""
    oracle = "lost-write"


class Accounting(Violation):
    """Oracle 4: refcount/mapcount/pincount/swap counts inconsistent, or a leak."""
    oracle = "accounting"


class UseAfterFree(Violation):
    """Oracle 4: a freed page or page table was accessed."""
    oracle = "use-after-free"


class TableSharing(Violation):
    """COW PTE: a table-sharing invariant broke (refcount, R/O sharers, modification)."""
    oracle = "table-sharing"


class KernelBug(Violation):
    """Oracle 5: a VM_BUG_ON-style assertion of the kernel code fired."""
    oracle = "VM_BUG_ON"


class Deadlock(Violation):
    """Oracle 5: no task can run but some are blocked in the kernel."""
    oracle = "deadlock"


class Livelock(Violation):
    """Oracle 5: the step budget ran out."""
    oracle = "livelock"


def oracle_names() -> set[str]:
    """Every oracle a verdict can name (a design may add its own Violation subclass)."""
    names, todo = set(), [Violation]
    while todo:
        cls = todo.pop()
        names.add(cls.oracle)
        todo.extend(cls.__subclasses__())
    names.discard(Violation.oracle)
    return names


def VM_BUG_ON(cond: bool, what: str, **objects) -> None:
    """include/linux/mmdebug.h:VM_BUG_ON -- the kernel's own assertion."""
    if cond:
        raise KernelBug(what, **objects)
