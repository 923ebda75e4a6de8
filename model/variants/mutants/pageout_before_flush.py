"""Reclaim writes a page to swap before flushing the TLB entries it deferred."""

from __future__ import annotations

from model.kernel import Kernel
from model.page import ANON, folio_maybe_dma_pinned
from model.variants import register


@register
class PageoutBeforeFlush(Kernel):
    """Reclaim writes a page to swap before flushing the TLB entries it deferred.

    MUTANT of the batched unmap flush. Reclaim unmaps each page with
    try_to_unmap_one and defers the TLB flush (TTU_BATCH_FLUSH). A PTE that was
    dirty was writable, so another CPU may still hold a writable translation;
    d950c9477d51 "mm: defer flush of writable TLB entries" (v4.4), which made
    writable entries deferrable too, therefore flushes them before any IO starts:
    "the TLB must be flushed before any IO can start or the page is freed to
    avoid lost writes or data corruption" -- try_to_unmap_flush_dirty() before
    pageout() in mm/vmscan.c:shrink_folio_list (v7.0).

    Here pageout starts with the flush still deferred: a store through the stale
    writable entry after the page was written to swap leaves the page dirty in
    memory only (the PTE is gone, so nothing marks it dirty), reclaim frees it,
    and the next load swaps in the older contents. The reproducer needs reclaim
    preempted after the pageout, the store, then reclaim's end before the load.
    """

    name = "pageout-before-flush"
    description = "mutant: reclaim starts swap IO before flushing the deferred writable TLB entries"
    expected_oracle = "lost-write"
    #: a random walk finds it in a median of 4,229 executions (cowfuzz bench, 5 trials,
    #: 2026-12-05): below the deep tier's 20,000, so it counts with the shallow bugs
    tier = "shallow"
    affected = "none (mutant of d950c9477d51, v4.4)"
    fix = "d950c9477d51 mm: defer flush of writable TLB entries"

    async def shrink_folio(self, folio) -> bool:
        """mm/vmscan.c:shrink_folio_list (v7.0) for one folio, without the
        try_to_unmap_flush_dirty() before pageout."""
        if not self.folio_trylock(folio):
            return False
        if folio.kind == ANON and not folio.swapcache:
            if folio_maybe_dma_pinned(folio):
                self.folio_unlock(folio)                              # keep_locked
                return False
            if not self.folio_alloc_swap(folio, "shrink_folio_list:folio_alloc_swap"):
                self._activate_locked(folio)
                return False
            self.folio_mark_dirty(folio)
        if folio.mapcount:
            await self.try_to_unmap(folio, batch_flush=True)
            if folio.mapcount:
                self._activate_locked(folio)
                return False
        if folio_maybe_dma_pinned(folio):
            self._activate_locked(folio)
            return False
        if folio.dirty:
            # (no try_to_unmap_flush_dirty(): the IO starts with the flush still deferred)
            if not await self.pageout(folio):
                self.folio_unlock(folio)                              # PAGE_KEEP: keep_locked
                return False
            if folio.writeback or folio.dirty:                        # PAGE_SUCCESS
                return False
            # A synchronous write - probably a ramdisk.  Go ahead and try to reclaim
            # the folio.
            if not self.folio_trylock(folio):
                return False
            if folio.dirty or folio.writeback:
                self.folio_unlock(folio)                              # keep_locked
                return False
        if not self._remove_mapping(folio):
            self.folio_unlock(folio)                                  # keep_locked
            return False
        return True
