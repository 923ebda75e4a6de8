"""Swap-out: shrink_folio_list, try_to_unmap_one, MADV_PAGEOUT.

Mirrors mm/vmscan.c:shrink_folio_list, mm/rmap.c:try_to_unmap_one and
mm/madvise.c:madvise_cold_or_pageout_pte_range (v7.0) for anon order-0
folios. The order that keeps pins safe (PageAnonExclusive series): a
maybe-pinned folio is not added to the swap cache (feb889fb40fa); each PTE
is cleared first (A1), then folio_try_share_anon_rmap_pte checks for pins
(A2) and clears PageAnonExclusive (A3) -- or restores the PTE and aborts --
and only then is the swap PTE installed (A4), exclusive iff the page was.
Reclaim defers its TLB flushes (TTU_BATCH_FLUSH): other CPUs may keep
stale entries until try_to_unmap_flush(), or until a zap/mprotect of that
mm calls flush_tlb_batched_pending(). pageout writes the folio under
PG_writeback with the folio unlocked (model/swap.py); the write completes
before shrink_folio_list looks at the folio again (a disk's write may
complete later, and the folio is then kept for a later pass: not modelled).
"""

from __future__ import annotations

from model.flags import EINVAL, ENOMEM
from model.page import ANON, folio_maybe_dma_pinned
from model.pgtable import (PTRS_PER_PTE, USER_PAGES, PtePointer, pmd_addr_start, pmd_index,
                           pte_index, swp_entry_to_pte)


class TlbUnmapBatch:
    """include/linux/mm_types_task.h:tlbflush_unmap_batch: the mms a task's reclaim
    cleared entries of without flushing, and whether any entry was dirty."""

    __slots__ = ("mms", "writable")

    def __init__(self):
        self.mms: list = []
        self.writable = False


class VmscanOps:
    """Reclaim of anonymous folios to swap."""

    # -- deferred TLB flushes of reclaim (mm/rmap.c, v7.0) --------------------
    def tlb_ubc_of_current(self) -> TlbUnmapBatch:
        """current->tlb_ubc: each reclaiming task batches its own deferred flushes."""
        tid = self.sched.current.tid
        batch = self.tlb_ubc.get(tid)
        if batch is None:
            batch = self.tlb_ubc[tid] = TlbUnmapBatch()
        return batch

    def set_tlb_ubc_flush_pending(self, mm, writable: bool = True) -> None:
        """mm/rmap.c:set_tlb_ubc_flush_pending (v7.0): defer the flush to the current
        task's batch; an entry that was dirty makes the batch writable."""
        batch = self.tlb_ubc_of_current()
        if mm not in batch.mms:
            batch.mms.append(mm)
        if writable:
            batch.writable = True
        if not mm.tlb_flush_batched:
            self.sched.log(mm, "tlb_flush_batched", False, True)
            mm.tlb_flush_batched = True

    async def try_to_unmap_flush(self, label: str = "try_to_unmap_flush") -> None:
        """mm/rmap.c:try_to_unmap_flush (v7.0): flush every CPU in the current task's
        batch."""
        batch = self.tlb_ubc.get(self.sched.current.tid)
        if batch is None or not batch.mms:
            return
        await self.sched.point(label)
        mms, batch.mms, batch.writable = batch.mms, [], False
        for mm in mms:
            for thread in mm.threads:
                if thread.tlb:
                    self.sched.log(thread, "tlb", dict(thread.tlb), {})
                    thread.tlb.clear()

    async def try_to_unmap_flush_dirty(self) -> None:
        """mm/rmap.c:try_to_unmap_flush_dirty (v7.0): before writeback, flush only if a
        dirty entry is in the batch -- through a clean one a CPU cannot store without a
        walk, which finds the entry gone."""
        batch = self.tlb_ubc.get(self.sched.current.tid)
        if batch is not None and batch.writable:
            await self.try_to_unmap_flush("shrink_folio_list:try_to_unmap_flush_dirty")

    # -- rmap side -----------------------------------------------------------------
    async def try_to_unmap_one(self, folio, vma, addr: int, batch_flush: bool) -> bool:
        """mm/rmap.c:try_to_unmap_one (v7.0), anon folio, one PTE. False aborts the walk."""
        mm = vma.vm_mm
        sched = self.sched
        if not await self.walk_pmd("rmap", vma, addr):
            return True
        ptep = await self.pte_offset_map_lock(mm, addr, "page_vma_mapped_walk:pte_offset_map_lock")
        if ptep is None:
            return True
        pteval = self.ptep_get(ptep)
        if pteval is None or not pteval.present or pteval.folio is not folio:
            self.pte_unmap_unlock(ptep)
            return True
        anon_exclusive = folio.kind == ANON and folio.anon_exclusive
        # Nuke the page table entry (A1).
        if batch_flush:
            pteval = self.ptep_get_and_clear(mm, addr, ptep)
            self.set_tlb_ubc_flush_pending(mm, pteval.dirty)
        else:
            pteval = await self.ptep_clear_flush(vma, addr, ptep, "try_to_unmap_one:ptep_clear_flush")
        if pteval.dirty:
            self.folio_mark_dirty(folio)
        if self.folio_dup_swap(folio) < 0:
            self.set_pte_at(mm, addr, ptep, pteval)
            self.pte_unmap_unlock(ptep)
            return False
        await sched.point("try_to_unmap_one:folio_try_share_anon_rmap_pte")
        # See folio_try_share_anon_rmap(): clear PTE first (A2, A3).
        if anon_exclusive and self.folio_try_share_anon_rmap_pte(folio):
            self.folio_put_swap(folio)
            self.set_pte_at(mm, addr, ptep, pteval)
            self.pte_unmap_unlock(ptep)
            return False
        swp_pte = swp_entry_to_pte(folio.swap, exclusive=anon_exclusive,
                                   soft_dirty=pteval.soft_dirty)
        self.set_pte_at(mm, addr, ptep, swp_pte)                     # A4
        self.folio_remove_rmap_pte(folio, vma)
        self.folio_put(folio)
        self.pte_unmap_unlock(ptep)
        return True

    async def try_to_unmap(self, folio, batch_flush: bool) -> None:
        """mm/rmap.c:try_to_unmap (v7.0): walk every mapping under the rmap lock."""
        await self.rmap_lock.down_read(self.sched, "try_to_unmap:folio_lock_anon_vma_read")
        for vma, addr in self.rmap_walk(folio):
            if not await self.try_to_unmap_one(folio, vma, addr, batch_flush):
                break
            if not folio.mapcount:
                break
        self.rmap_lock.up_read(self.sched)

    # -- vmscan ----------------------------------------------------------------------
    def _putback(self, folio) -> None:
        """folio_putback_lru: back on the LRU, drop the isolation reference."""
        folio.lru = True
        self.folio_put(folio)

    def _activate_locked(self, folio) -> None:
        """shrink_folio_list's activate_locked (v7.0): a folio reclaim gives up on leaves
        the swap cache if swap is more than half full (mem_cgroup_swap_full), then is
        unlocked and kept."""
        if folio.swapcache and self.vm_swap_full():
            self.folio_free_swap(folio)
        self.folio_unlock(folio)

    async def shrink_folio(self, folio) -> bool:
        """One iteration of mm/vmscan.c:shrink_folio_list (v7.0) for an isolated anon
        folio. Returns True if the folio was reclaimed (freed); a kept one is unlocked
        and left isolated for shrink_folio_list to put back."""
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
            await self.try_to_unmap_flush_dirty()
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

    async def pageout(self, folio) -> bool:
        """mm/vmscan.c:pageout (v7.0), a swap-backed folio: False (PAGE_KEEP) unless
        is_page_cache_freeable -- nothing but the isolation and the swap cache holds a
        reference: a GUP reference taken before the unmap may still store into the page,
        and a write to swap now would lose that store -- else folio_clear_dirty_for_io and
        swap_writeout (model/swap.py), which unlocks the folio."""
        if folio._refcount != 2:                                      # is_page_cache_freeable
            return False
        folio.dirty = False
        self.sched.log(folio, "dirty", True, False)
        await self.swap_writeout(folio)
        return True

    def _remove_mapping(self, folio) -> bool:
        """mm/vmscan.c:__remove_mapping (v7.0), swap cache: freeze the refcount at
        isolation + cache; a racing reference (a GUP-fast grab) makes it fail. The
        frozen folio is freed by shrink_folio_list after try_to_unmap_flush()."""
        if folio._refcount != 2 or folio.dirty or not folio.swapcache:
            return False
        slot = self.swap_slots[folio.swap]
        self.sched.log(folio, "_refcount", 2, 0)                      # folio_ref_freeze
        folio._refcount = 0
        slot.folio = None
        slot.has_cache = False
        folio.swapcache = False
        self.sched.log(folio, "swapcache", slot.name, False)
        folio.swap = None
        self._maybe_free_slot(slot)
        self.folio_unlock(folio)
        return True

    async def shrink_folio_list(self, folios) -> None:
        """mm/vmscan.c:shrink_folio_list (v7.0) and its caller's putback: reclaimed
        folios are freed only after the deferred TLB flush (try_to_unmap_flush before
        free_unref_folios); the kept ones go back to the LRU (ret_folios, then
        reclaim_folio_list's putback) after it too, with their isolation reference held
        until then."""
        free_folios, kept = [], []
        for folio in folios:
            (free_folios if await self.shrink_folio(folio) else kept).append(folio)
        await self.try_to_unmap_flush()
        for folio in free_folios:
            self.free_folio(folio)
        for folio in kept:
            self._putback(folio)

    # -- entry points ----------------------------------------------------------------
    async def reclaim_folio_at(self, mm, va: int) -> int:
        """kswapd picks the folio mapped at ``va``: folio_isolate_lru + shrink_folio_list."""
        await self.sched.point("shrink_inactive_list:folio_isolate_lru")
        pmd = mm.pmd[pmd_index(va)]
        pte = pmd.table.ptes[pte_index(va)] if pmd is not None else None
        if pte is None or not pte.present or pte.special or pte.folio.kind != ANON:
            return -EINVAL
        folio = pte.folio
        if not folio.lru or not self.folio_try_get(folio):
            return -EINVAL
        folio.lru = False
        await self.shrink_folio_list([folio])
        return 0

    async def madvise_pageout(self, mm, start: int, npages: int) -> int:
        """mm/madvise.c:madvise_pageout (v7.0) under mmap_lock (read), with an mmu_gather
        open for the whole call (a concurrent zap's tlb_finish_mmu sees it pending):
        madvise_cold_or_pageout_pte_range isolates each table's exclusively mapped anon
        folios under its ptl, after flush_tlb_batched_pending, and reclaim_pages() them
        before the next table."""
        end = start + npages
        if npages <= 0 or start < 0 or end > USER_PAGES:
            return -EINVAL
        sched = self.sched
        await mm.mmap_lock.down_read(sched, "madvise_lock:mmap_read_lock")
        tlb = self.tlb_gather_mmu(mm)
        hole = self.range_has_hole(mm, start, end)
        for vma in list(mm.vmas):
            s, e = max(start, vma.vm_start), min(end, vma.vm_end)
            addr = s
            while addr < e:
                nxt = min(e, pmd_addr_start(addr) + PTRS_PER_PTE)
                ptep = await self.pte_offset_map_lock(
                    mm, addr, "madvise_cold_or_pageout_pte_range:pte_offset_map_lock")
                folios = []
                if ptep is not None:
                    await self.flush_tlb_batched_pending(mm)
                    for a in range(addr, nxt):
                        pte = self.ptep_get(PtePointer(ptep.table, pte_index(a)))
                        if pte is None or not pte.present:
                            continue
                        folio = self.vm_normal_page(vma, a, pte)
                        if folio is None or folio.kind != ANON:
                            continue
                        if not folio.lru or folio.mapcount != 1:
                            continue
                        if self.folio_try_get(folio):               # folio_isolate_lru
                            folio.lru = False
                            folios.append(folio)
                    self.pte_unmap_unlock(ptep)
                if folios:
                    await self.shrink_folio_list(folios)            # reclaim_pages
                addr = nxt
        await self.tlb_finish_mmu(tlb)
        mm.mmap_lock.up_read(sched)
        return -ENOMEM if hole else 0                    # madvise_walk_vmas: unmapped_error
