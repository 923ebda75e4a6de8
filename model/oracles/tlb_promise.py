"""A narrower TLB excuse: what munmap, MADV_DONTNEED, mprotect and mremap promise.

The per-step TLB check (model/oracles/invariants.py: check_tlbs) excuses a
stale writable TLB entry for as long as any flush of its mm is pending --
among them reclaim's deferred batch (TTU_BATCH_FLUSH), which may sit there
for the whole operation. But an operation that changes a range's PTEs
promises more once it returns: no CPU keeps a writable translation of the
range that the page table no longer allows. That is why these paths call
flush_tlb_batched_pending() (3ea277194daa "mm, mprotect: flush TLB if
potentially racing with a parallel reclaim leaving stale TLB entries"): a
PTE reclaim cleared without flushing yet must not outlive the operation's
return.

So when one of them returns -- mprotect only when it took write permission
away: an mprotect that leaves the range writable promises nothing about
writes -- every writable TLB entry of the range, on every CPU of the mm,
must agree with the page table -- unless another operation
still owes a flush for it: another mmu_gather of the mm still open
(tlb_flush_pending), a writer of mmap_lock (fork's flush comes at its end),
or reclaim having batched an unmap of the mm *since* this operation began
(a PTE refilled by a concurrent fault and cleared again).
"""

from __future__ import annotations

from model.oracles.errors import WritableShared
from model.pgtable import PTRS_PER_PTE


class TlbPromise:
    """What a returning munmap / MADV_DONTNEED / mprotect / mremap promises its range."""

    #: off: only the per-step check with its wider excuse (tests measure the difference)
    tlb_promise_oracle = True

    def _tlb_batches(self) -> dict:
        """mm id -> how many times reclaim started a deferred flush batch for it (ghost)."""
        batches = self.__dict__.get("_tlb_batch_count")
        if batches is None:
            batches = self._tlb_batch_count = {}
        return batches

    def tlb_promise_after_step(self, step) -> None:
        """Count reclaim's batches: mm.tlb_flush_batched going from clear to set."""
        for obj, field, _index, old, new in step.changes:
            if field == "tlb_flush_batched" and new and not old:
                batches = self._tlb_batches()
                batches[obj.mid] = batches.get(obj.mid, 0) + 1

    def tlb_promise_begin(self, mm) -> int:
        """An operation with the promise starts: remember reclaim's batch count."""
        return self._tlb_batches().get(mm.mid, 0)

    def tlb_promise_end(self, mm, start: int, end: int, began: int, what: str) -> None:
        """The operation returned (successfully): check its range."""
        if not self.tlb_promise_oracle or mm.dead:
            return
        if mm.tlb_flush_pending > 0 or mm.mmap_lock.writer is not None:
            return                     # another operation's flush is still to come
        if mm.tlb_flush_batched and self._tlb_batches().get(mm.mid, 0) > began:
            return                     # reclaim batched a new unmap since we began
        for thread in mm.threads:
            for va, entry in thread.tlb.items():
                if not (start <= va < end) or not entry.write:
                    continue
                pmd = mm.pmd[va // PTRS_PER_PTE]
                pte = pmd.table.ptes[va % PTRS_PER_PTE] if pmd is not None else None
                if pte is not None and pte.present and pte.folio is entry.folio \
                        and pte.write and pmd.write:
                    continue
                raise WritableShared(
                    f"{what} of va {start}..{end - 1} returned, but {thread.name} still has a "
                    f"writable TLB entry at va {va} for {entry.folio.name} and the page table "
                    f"has {pte!r}; no other operation owes a flush",
                    mm=mm.mid, va=va, pfn=entry.folio.pfn)
