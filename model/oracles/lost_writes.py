"""Lost writes as a state invariant.

The load oracle (model/oracles/spec.py: check_load) sees a lost write only
when a later load happens to read the address; the state may have gone
wrong many steps before. This check looks at the state itself: at every
quiescent point where something a load depends on changed (a PTE, a pmd,
page contents, the swap cache, a completed store), and when a task
finishes, every address of every live process still holds the last
completed store to it -- ``Spec.expected``, None where no single value is
promised (an unmap or a move in flight, a racy store) -- as a load would
read it now (``Spec.peek``: the mapped page, the swap cache or device, the
file, zero).

Quiescent: no page-table lock is held and no design's multi-step table
operation is half done (the kernel changes an entry only under its lock, so
a half-done change is never what a load can see: it would wait for the
lock).
"""

from __future__ import annotations

from model.oracles.errors import LostWrite

#: the changes that can move what a load would read
_WATCHED = frozenset(("pte", "pmd", "data", "swapcache", "freed", "uptodate", "vma"))


class LostWriteInvariant:
    """Every page still holds the last completed store to it."""

    #: off: only loads find lost writes (tests measure what the invariant adds)
    lost_write_invariant = True
    #: something a load depends on changed since the last check
    lost_writes_dirty = False

    def lost_writes_after_step(self, step) -> None:
        if not self.lost_write_invariant:
            return
        if not self.lost_writes_dirty:
            for change in step.changes:
                if change[1] in _WATCHED:
                    self.lost_writes_dirty = True
                    break
            else:
                return
        if self.in_table_operation() or self.any_ptl_held():
            return
        self.lost_writes_dirty = False
        self.check_lost_writes()

    def lost_writes_task_done(self, proc) -> None:
        """A task finished its operations: its process's memory holds its stores."""
        if self.lost_write_invariant and not self.in_table_operation():
            self.check_lost_writes(proc)

    def check_lost_writes(self, only=None) -> None:
        spec = self.spec
        for (pid, va), token in spec.expected.items():
            if token is None or (only is not None and pid != only.pid):
                continue
            proc = self.process_by_pid(pid)
            if proc is None or proc.mm.mm_users == 0:
                continue                      # gone, or exit_mmap is tearing it down
            seen = spec.peek(proc.mm, va)
            if seen is not None and seen != token:
                raise LostWrite(f"{proc.name}'s memory at va {va} holds {spec.describe(seen)}, "
                                f"but its last completed store there was "
                                f"{spec.describe(token)}",
                                pid=pid, va=va, value=seen, expected=token)
