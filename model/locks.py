"""Scheduler-aware kernel locks: spinlock (ptl), rw_semaphore (mmap_lock, the
per-VMA lock), seqcount (write_protect_seq), and user-space events.

A model task never blocks on anything but the gate: acquiring a held lock
marks the task blocked on the lock (not runnable) and hands the CPU to
another task; releasing it makes every waiter runnable again, and each
retries when the chooser picks it. So lock hand-off order is itself a
scheduling decision, as on real hardware.

Each acquire is preceded by a scheduling point labelled by the caller
(``"<kernel function>:<what>"``). Releases are plain ``def``: nothing can
be interleaved inside an unlock, and the releasing task's next point lets
the woken waiters run.

The ``sched`` argument is the scheduler as the model sees it
(``model.sched.Sched``).
"""

from __future__ import annotations

from model.oracles.errors import Deadlock, KernelBug


class SpinLock:
    """include/linux/spinlock.h: spin_lock/spin_unlock (the page table lock)."""

    __slots__ = ("name", "owner", "waiters")

    def __init__(self, name: str):
        self.name = name
        self.owner = None
        self.waiters = []

    async def lock(self, sched, label: str) -> None:
        await sched.point(label)
        cur = sched.current
        while self.owner is not None:
            if self.owner is cur:
                raise Deadlock(f"{cur.name} takes {self.name} it already holds (AA deadlock)")
            await sched.wait(self, label)
        self.owner = cur
        sched.log(self, "owner", None, cur.name)

    def trylock(self, sched) -> bool:
        if self.owner is not None:
            return False
        self.owner = sched.current
        sched.log(self, "owner", None, self.owner.name)
        return True

    def unlock(self, sched) -> None:
        if self.owner is not sched.current:
            raise KernelBug(f"spin_unlock of {self.name} not held by {sched.current.name}")
        sched.log(self, "owner", self.owner.name, None)
        self.owner = None
        sched.wake_all(self)

    def __repr__(self) -> str:
        return self.name


class RwSemaphore:
    """kernel/locking/rwsem.c: down_read/down_write (mmap_lock, vma->vm_lock).

    Writers are preferred: a reader does not get the lock while a writer
    waits, as with the kernel's rwsem hand-off, so a reader that already
    holds the lock and asks again behind a waiting writer deadlocks here
    exactly as it would in the kernel.
    """

    __slots__ = ("name", "readers", "writer", "writers_waiting", "waiters")

    def __init__(self, name: str):
        self.name = name
        self.readers = []
        self.writer = None
        self.writers_waiting = 0
        self.waiters = []

    async def down_read(self, sched, label: str) -> None:
        await sched.point(label)
        cur = sched.current
        while self.writer is not None or self.writers_waiting:
            if self.writer is cur:
                raise Deadlock(f"{cur.name} read-locks {self.name} it holds for write")
            await sched.wait(self, label)
        self.readers.append(cur)
        sched.log(self, "readers", len(self.readers) - 1, len(self.readers))

    def down_read_trylock(self, sched) -> bool:
        if self.writer is not None or self.writers_waiting:
            return False
        self.readers.append(sched.current)
        sched.log(self, "readers", len(self.readers) - 1, len(self.readers))
        return True

    def up_read(self, sched) -> None:
        cur = sched.current
        if cur not in self.readers:
            raise KernelBug(f"up_read of {self.name} not read-held by {cur.name}")
        self.readers.remove(cur)
        sched.log(self, "readers", len(self.readers) + 1, len(self.readers))
        if not self.readers:
            sched.wake_all(self)

    async def down_write(self, sched, label: str) -> None:
        await sched.point(label)
        cur = sched.current
        if self.writer is not None or self.readers:
            if self.writer is cur or cur in self.readers:
                raise Deadlock(f"{cur.name} write-locks {self.name} it already holds")
            self.writers_waiting += 1
            while self.writer is not None or self.readers:
                await sched.wait(self, label)
            self.writers_waiting -= 1
        self.writer = cur
        sched.log(self, "writer", None, cur.name)

    def up_write(self, sched) -> None:
        if self.writer is not sched.current:
            raise KernelBug(f"up_write of {self.name} not write-held by {sched.current.name}")
        sched.log(self, "writer", self.writer.name, None)
        self.writer = None
        sched.wake_all(self)

    def is_write_locked(self) -> bool:
        return self.writer is not None

    def __repr__(self) -> str:
        return self.name


class SeqCount:
    """include/linux/seqlock.h: seqcount_t (mm->write_protect_seq).

    Readers never block; they sample the count and retry on change. The
    write side is a plain counter bump: callers already hold the lock that
    serialises writers (mmap_lock for fork).
    """

    __slots__ = ("name", "sequence")

    def __init__(self, name: str):
        self.name = name
        self.sequence = 0

    def raw_write_seqcount_begin(self, sched) -> None:
        sched.log(self, "sequence", self.sequence, self.sequence + 1)
        self.sequence += 1

    def raw_write_seqcount_end(self, sched) -> None:
        sched.log(self, "sequence", self.sequence, self.sequence + 1)
        self.sequence += 1

    def raw_read_seqcount(self) -> int:
        return self.sequence

    def read_seqcount_retry(self, start: int) -> bool:
        return self.sequence != start

    def __repr__(self) -> str:
        return self.name


class UserEvent:
    """A user-space one-shot event (cow.c's comm pipes): ``wait`` blocks until ``signal``.

    A task blocked here is in user space, not the kernel: if only such tasks
    remain, the program is stuck, which is not a kernel deadlock.
    """

    __slots__ = ("name", "signalled", "waiters")

    def __init__(self, name: str):
        self.name = name
        self.signalled = False
        self.waiters = []

    async def wait(self, sched, label: str) -> None:
        await sched.point(label)
        while not self.signalled:
            await sched.wait(self, label, user=True)

    def signal(self, sched) -> None:
        if not self.signalled:
            sched.log(self, "signalled", False, True)
            self.signalled = True
            sched.wake_all(self)

    def __repr__(self) -> str:
        return self.name
