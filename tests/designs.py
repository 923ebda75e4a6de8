"""Deliberately broken designs: each gets one detail of a mechanism wrong, so that a test can
show the model catching it. None is registered (no input can name one); each is the
smallest change to a real design.
"""

from __future__ import annotations

from model.flags import VM_WIPEONFORK
from model.kernel import Kernel
from model.pgtable import PTRS_PER_PTE
from model.variants.cowpte.relaxed import CowPteRelaxed
from model.variants.cowpte.relaxed_shared_unmap import CowPteRelaxedSharedUnmap


# -- the paging-structure cache ------------------------------------------------------------
class TableFreedBeforeFlush(Kernel):
    """Upstream, except that tlb_remove_table frees a page table at once instead of after
    the mmu_gather's flush: a CPU whose paging-structure cache still holds the pmd walks
    freed memory."""

    name = "test-table-freed-before-flush"

    def tlb_remove_table(self, tlb, table) -> None:
        self.pte_free(table)


class TableFreedBeforeFlushNoCache(TableFreedBeforeFlush):
    """The same design on a model without paging-structure caches: nothing to catch."""

    name = "test-table-freed-before-flush-no-psc"
    paging_structure_caches = False


class RelaxedBreakLeafFlush(CowPteRelaxed):
    """cowpte-relaxed whose break flushes leaf entries only (no freed_tables): another CPU
    of the mm keeps walking the old table, which the other sharer, now its last user,
    changes in place."""

    name = "test-relaxed-break-leaf-flush"

    async def cow_pte_flush_replaced(self, mm, start: int, end: int) -> None:
        await self.flush_tlb_mm_range(mm, start, end, False, "break_cow_pte:flush_tlb_range")


class RelaxedBreakLeafFlushNoCache(RelaxedBreakLeafFlush):
    name = "test-relaxed-break-leaf-flush-no-psc"
    paging_structure_caches = False


# -- the relaxed fork's in-place preparation and its roll-back ------------------------------
class RelaxedRecoverKeepsRmap(CowPteRelaxed):
    """cowpte-relaxed whose roll-back restores the entry and PageAnonExclusive but not the
    child's mapcount and reference: the copy path then counts the child a second time."""

    name = "test-relaxed-recover-keeps-rmap"

    def cow_pte_unprepare(self, vma, ptep, addr, orig, exclusive) -> None:
        if exclusive:
            self.SetPageAnonExclusive(orig.folio)
        if self.ptep_get(ptep) != orig:
            self.set_pte_at(vma.vm_mm, addr, ptep, orig)


class RelaxedRecoverKeepsWrprotect(CowPteRelaxed):
    """cowpte-relaxed whose roll-back leaves the entry write-protected and the page not
    PageAnonExclusive: harmless, the copy path does both again for a COW mapping."""

    name = "test-relaxed-recover-keeps-wrprotect"

    def cow_pte_unprepare(self, vma, ptep, addr, orig, exclusive) -> None:
        if orig.present:
            folio = self.vm_normal_page(vma, addr, orig)
            if folio is not None:
                self.folio_remove_rmap_pte(folio, vma)
                self.folio_put(folio)
        else:
            self.swap_put_entries_direct(orig.swp)


# -- reclaim meeting a shared table ----------------------------------------------------------
class RelaxedForkSkipsReadOnly(CowPteRelaxed):
    """cowpte-relaxed whose fork tells a table it shared by the child's pmd being read-only
    (v4's rule) instead of by its own record: once the rmap walk broke the child's table,
    a later VMA of that table is copied into it a second time."""

    name = "test-relaxed-fork-skips-read-only"

    def cow_pte_shared_by_this_fork(self, dst_mm, idx) -> bool:
        return not dst_mm.pmd[idx].write


class SharedUnmapFlushesOneSharer(CowPteRelaxedSharedUnmap):
    """cowpte-relaxed-shared-unmap that flushes the TLB of the mm the rmap walk is visiting
    only: the other sharers keep translations of a page that is then freed."""

    name = "test-shared-unmap-flushes-one-sharer"

    async def cow_pte_flush_sharers(self, table, mm, addr, batch_flush) -> None:
        self.set_tlb_ubc_flush_pending(mm)


# -- mremap ---------------------------------------------------------------------------------
class MremapWithoutFlush(Kernel):
    """Upstream, except that move_ptes drops the old range's flush_tlb_range: another CPU
    keeps writing through its translation of the old address into the page that now
    lives at the new one."""

    name = "test-mremap-without-flush"

    async def flush_tlb_range(self, vma, start, end, label="flush_tlb_range"):
        if label == "move_ptes:flush_tlb_range":
            await self.sched.point(label)
            return
        await super().flush_tlb_range(vma, start, end, label)


# -- MADV_DONTFORK / MADV_WIPEONFORK on a relaxed fork ---------------------------------------
class RelaxedSharesWipeOnFork(CowPteRelaxed):
    """cowpte-relaxed whose fork stops the in-place preparation for VM_DONTCOPY only: a
    table that also maps a VM_WIPEONFORK range is shared, and the child sees the parent's
    pages where it should see an empty mapping."""

    name = "test-relaxed-shares-wipeonfork"

    async def cow_pte_prepare(self, table, src_mm, start, end):
        saved = [(v, v.vm_flags) for v in self.vmas_in_table(src_mm, start)]
        for v, flags in saved:
            v.vm_flags = flags & ~VM_WIPEONFORK
        try:
            return await super().cow_pte_prepare(table, src_mm, start, end)
        finally:
            for v, flags in saved:
                v.vm_flags = flags


# -- rmap reaching a VMA munmap detached -------------------------------------------------------
class MunmapZapsWithoutPtl(Kernel):
    """Upstream, except that munmap, once it detached the VMAs, waits for the rmap walks
    in flight (a write lock of the rmap lock, released at once) and then zaps without the
    ptl, as if nobody could reach the detached VMAs' tables any more: a reclaim that
    starts its rmap walk after the detach still can, and the two change the same PTE."""

    name = "test-munmap-zaps-without-ptl"

    async def unmap_region(self, mm, vmas, start, end) -> None:
        await self.rmap_lock.down_write(self.sched, "unmap_region:rmap_barrier")
        self.rmap_lock.up_write(self.sched)
        await super().unmap_region(mm, vmas, start, end)

    async def pte_offset_map_lock(self, mm, addr, label, readonly=False):
        if label == "zap_pte_range:pte_offset_map_lock" and \
                any(v.vm_start <= addr < v.vm_end for v in mm.detached_vmas):
            await self.sched.point(label)
            return self.pte_offset_map(mm, addr)
        return await super().pte_offset_map_lock(mm, addr, label, readonly)

    def pte_unmap_unlock(self, ptep) -> None:
        if ptep.table.ptl.owner is self.sched.current:
            super().pte_unmap_unlock(ptep)


class MunmapZapsWithoutPtlNoDetachedRmap(MunmapZapsWithoutPtl):
    """The same design on a model whose rmap walk skips detached VMAs (as the model did
    before): reclaim never meets the zap, nothing to catch."""

    name = "test-munmap-zaps-without-ptl-no-detached-rmap"

    def rmap_walk(self, folio):
        return ((vma, addr) for vma, addr in super().rmap_walk(folio)
                if vma in vma.vm_mm.vmas)


# -- swap-in and writeback ----------------------------------------------------------------------
class SwapReadUnlocksEarly(Kernel):
    """Upstream, except that the swap-in read marks the folio uptodate and unlocks it when
    the bio is submitted, and the data arrives at completion: a fault that waited for the
    folio maps it before its contents are there."""

    name = "test-swap-read-unlocks-early"

    async def swap_read_folio(self, folio, synchronous):
        self.folio_mark_uptodate(folio)
        self.folio_unlock(folio)
        await self.sched.point("swap_read_folio:submit_bio")
        slot = self._slot(folio.swap)
        self.sched.log(folio, "data", folio.data, slot.data)
        folio.data = slot.data


class FreeSwapUnderWriteback(Kernel):
    """Upstream, except that folio_swapcache_freeable forgets PG_writeback: a read fault
    during pageout frees the swap cache and, its last swap PTE gone, the slot, while the
    write to it is still in flight."""

    name = "test-free-swap-under-writeback"

    def folio_swapcache_freeable(self, folio) -> bool:
        return folio.swapcache


# -- zap_pte_range dropping the ptl mid-table ---------------------------------------------------
class PtReclaimWithoutRecheck(Kernel):
    """Upstream as before "mm: pgtable: fix incorrect reclaim of non-empty PTE pages"
    (Qi Zheng, 2025, Fixes: 6375e95f381e): after zap_pte_range broke out on need_resched
    and retried, its last round takes the fast path and frees the table without
    rechecking the entries zapped before the break -- which a fault may have refilled
    while the ptl was dropped."""

    name = "test-pt-reclaim-without-recheck"

    async def zap_pte_range(self, tlb, vma, addr, end, reclaim_pt=False):
        mm = tlb.mm
        sched = self.sched
        shared = await self.zap_pte_range_shared(tlb, vma, addr)
        start = addr
        can_reclaim_pt = reclaim_pt and not shared and end - addr >= PTRS_PER_PTE
        direct_reclaim = False
        while True:
            ptep = await self.pte_offset_map_lock(mm, addr, "zap_pte_range:pte_offset_map_lock")
            if ptep is None:
                return
            table = ptep.table
            await self.flush_tlb_batched_pending(mm)
            progressed = False
            while addr < end:
                await sched.point("zap_pte_range:ptep_get")
                if progressed and self.zap_breaks_on_resched and sched.need_resched():
                    break                            # direct_reclaim not cleared
                progressed = True
                self.zap_one_pte(tlb, vma, table, addr, shared, [])
                addr += 1
            if can_reclaim_pt and addr == end:
                direct_reclaim = self.zap_empty_pte_table(mm, start)
            self.pte_unmap_unlock(ptep)
            if addr != end:
                await sched.point("zap_pte_range:cond_resched")
                continue
            break
        if can_reclaim_pt:
            if direct_reclaim:
                self.tlb_remove_table(tlb, table)
            else:
                await self.zap_pte_table_if_empty(tlb, mm, start)


class PtReclaimWithoutRecheckNoBreak(PtReclaimWithoutRecheck):
    """The same design on a model whose zap never drops the ptl mid-table: nothing to
    catch."""

    name = "test-pt-reclaim-without-recheck-no-break"
    zap_breaks_on_resched = False


# -- the sharper oracles -------------------------------------------------------------------------
class NoBatchedFlushPending(Kernel):
    """Upstream before 3ea277194daa ("mm, mprotect: flush TLB if potentially racing with a
    parallel reclaim leaving stale TLB entries"): no flush_tlb_batched_pending, so
    MADV_DONTNEED, munmap and mprotect return while a CPU still writes through a
    translation reclaim unmapped and has not flushed yet."""

    name = "test-no-batched-flush-pending"

    async def flush_tlb_batched_pending(self, mm) -> None:
        return


class VmaReadIgnoresWriteLock(Kernel):
    """Upstream, except that vma_start_read does not look at vm_lock_seq: a VMA that
    dup_mmap write-locked still lets page faults in (as every VMA did before fb49c455323f
    "fork: lock VMAs of the parent process when forking", v6.4, put fork under the
    per-VMA lock)."""

    name = "test-vma-read-ignores-write-lock"

    def vma_start_read(self, mm, vma) -> bool:
        if vma.vm_lock.writers_waiting:
            return False
        return vma.vm_lock.down_read_trylock(self.sched)
