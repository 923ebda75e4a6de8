"""The fork window: what write-locking the parent's VMAs promises.

dup_mmap write-locks each parent VMA before it copies it (vma_start_write,
fb49c455323f "fork: lock VMAs of the parent process when forking", v6.4)
and keeps it locked until mmap_write_unlock: from then on no page fault
runs on that VMA, so nothing but fork itself changes its page table while
fork copies it and write-protects it -- the flush at the end of dup_mmap
must be the only thing between the copy and the parent's next write fault.
Without the lock a fault can replace the page fork just write-protected,
and a CPU still holding the old writable translation writes into the page
now shared with the child: a bug that shows as a lost write or a leak only
after several more precisely placed steps.

This check fires at the step that breaks the promise: a fault handler
(handle_mm_fault, any path below it, also GUP's faultin) changing a PTE of a
VMA that a concurrent dup_mmap has write-locked. Reclaim's rmap walk and
GUP-fast take no VMA lock and are not fault handlers; the hardware setting
a Dirty bit is not either.
"""

from __future__ import annotations

from model.oracles.errors import ForkWindow


class ForkWindowOracle:
    """No fault changes the page table of a VMA dup_mmap has write-locked."""

    #: off: the fork window is not watched (tests measure what it adds)
    fork_window_oracle = True

    def _fork_window_state(self):
        """(tid of the forking task -> (mm, [(start, end) of VMAs locked]), faulting tids)."""
        state = self.__dict__.get("_fork_windows_open")
        if state is None:
            state = self._fork_windows_open = ({}, set())
        return state

    def fork_window_lock_vma(self, mm, vma) -> None:
        """dup_mmap write-locked ``vma`` of the parent ``mm``: its window opens."""
        windows, _ = self._fork_window_state()
        tid = self.sched.current.tid
        windows.setdefault(tid, (mm, []))[1].append((vma.vm_start, vma.vm_end))

    def fork_window_close(self) -> None:
        """dup_mmap released the parent's mmap_lock: every window of this fork closes."""
        windows, _ = self._fork_window_state()
        windows.pop(self.sched.current.tid, None)

    def fork_window_fault(self, entering: bool) -> None:
        """The running task enters or leaves a fault handler."""
        _, faulting = self._fork_window_state()
        tid = self.sched.current.tid
        if entering:
            faulting.add(tid)
        else:
            faulting.discard(tid)

    def fork_window_pte_changed(self, mm, addr: int, old, new) -> None:
        """set_pte_at of ``mm`` at ``addr``: by a fault inside another task's fork window?"""
        windows, faulting = self._fork_window_state()
        if not windows or not self.fork_window_oracle:
            return
        cur = self.sched.current.tid
        if cur not in faulting:
            return
        for tid, (forked, ranges) in windows.items():
            if tid == cur or forked is not mm:
                continue
            for start, end in ranges:
                if start <= addr < end:
                    raise ForkWindow(
                        f"a page fault changes pte[{addr}] of {mm.name} from {old!r} to "
                        f"{new!r} while a fork has that VMA ({start}-{end}) write-locked",
                        mm=mm.mid, va=addr)
