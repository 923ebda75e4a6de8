"""Unmapping: zap_pte_range, munmap, MADV_DONTNEED, exit_mmap, free_pgtables.

Mirrors mm/memory.c (zap_pte_range and its callers), mm/vma.c (munmap),
mm/madvise.c (MADV_DONTNEED) and mm/mmap.c (exit_mmap), v7.0. The rules
that matter: PTEs are cleared under the ptl; a present page's mapcount
drops under the ptl but its reference only after the TLB flush (the
mmu_gather); dirty file pages delay even the rmap removal past a flush
taken under the ptl; page tables are freed only after the flush and after
any GUP-fast walker left. MADV_DONTNEED runs under the per-VMA read lock
(falling back to mmap_lock for read) and may free a PTE table it emptied
(CONFIG_PT_RECLAIM); munmap detaches the VMAs under the write lock and
zaps after downgrading it to read.
"""

from __future__ import annotations

from model.flags import EINVAL, ENOMEM
from model.pgtable import PTRS_PER_PTE, USER_PAGES, PtePointer, pmd_addr_start, pmd_index, pte_index


class ZapOps:
    """Unmapping and page-table freeing."""

    #: zap_pte_range breaks out on need_resched() (False: it never drops the ptl mid-table,
    #: as the model did before; tests use it to show what the break adds)
    zap_breaks_on_resched = True

    async def flush_tlb_batched_pending(self, mm) -> None:
        """mm/rmap.c:flush_tlb_batched_pending (v7.0): flush what reclaim deferred."""
        if mm.tlb_flush_batched:
            await self.flush_tlb_mm(mm, "flush_tlb_batched_pending")
            self.sched.log(mm, "tlb_flush_batched", True, False)
            mm.tlb_flush_batched = False

    async def zap_pte_range_shared(self, tlb, vma, addr: int) -> bool:
        """Whether this zap only de-accounts this mm's share of a table other mms still
        map (the entries stay). Upstream tables are never shared."""
        return False

    async def zap_pte_range(self, tlb, vma, addr: int, end: int, reclaim_pt: bool = False) -> None:
        """mm/memory.c:zap_pte_range (v7.0). The loop breaks out on need_resched() (the
        schedule preempted the zap at its per-PTE point, after at least one entry of the
        round), drops the ptl -- other tasks may take it -- and retries from there.
        reclaim_pt (MADV_DONTNEED, CONFIG_PT_RECLAIM): a table zapped whole under one ptl
        hold is freed at once (zap_empty_pte_table); after a break, only once every entry
        is rechecked none (zap_pte_table_if_empty: the entries zapped before the break may
        have been refilled while the ptl was dropped)."""
        mm = tlb.mm
        sched = self.sched
        shared = await self.zap_pte_range_shared(tlb, vma, addr)
        start = addr
        can_reclaim_pt = reclaim_pt and not shared and end - addr >= PTRS_PER_PTE
        direct_reclaim = True
        while True:                                                        # retry:
            ptep = await self.pte_offset_map_lock(mm, addr, "zap_pte_range:pte_offset_map_lock")
            if ptep is None:
                return
            table = ptep.table
            await self.flush_tlb_batched_pending(mm)
            force_flush = False
            delayed_rmap = []
            progressed = False
            while addr < end:
                await sched.point("zap_pte_range:ptep_get")
                if progressed and self.zap_breaks_on_resched and sched.need_resched():
                    direct_reclaim = False
                    break
                progressed = True
                if self.zap_one_pte(tlb, vma, table, addr, shared, delayed_rmap):
                    force_flush = True
                addr += 1
            if can_reclaim_pt and direct_reclaim and addr == end:
                direct_reclaim = self.zap_empty_pte_table(mm, start)
            if force_flush:
                # Do the actual TLB flush before dropping ptl (tlb_flush_mmu_tlbonly)
                await sched.point("zap_pte_range:tlb_flush_mmu_tlbonly")
                self._tlb_drop(mm, tlb.start, tlb.end)
                for folio in delayed_rmap:       # tlb_flush_rmaps
                    self.folio_remove_rmap_pte(folio, vma)
            self.pte_unmap_unlock(ptep)
            if force_flush:
                await self.tlb_flush_mmu(tlb, "zap_pte_range:tlb_flush_mmu")
            if addr != end:
                await sched.point("zap_pte_range:cond_resched")
                continue
            break
        if can_reclaim_pt:
            if direct_reclaim:
                self.tlb_remove_table(tlb, table)                          # free_pte
            else:
                await self.zap_pte_table_if_empty(tlb, mm, start)

    def zap_one_pte(self, tlb, vma, table, a: int, shared: bool, delayed_rmap: list) -> bool:
        """mm/memory.c:do_zap_pte_range -> zap_present_folio_ptes / zap_nonpresent_ptes
        (v7.0) for the entry at ``a``, under the ptl. True when the TLB must be flushed
        before the ptl is dropped (a dirty file page: tlb_delay_rmap)."""
        mm = tlb.mm
        p = PtePointer(table, pte_index(a))
        pte = self.ptep_get(p)
        if pte is None:
            return False
        if not pte.present:
            self.swap_put_entries_direct(pte.swp)
            if not shared:
                self.ptep_get_and_clear(mm, a, p)
            return False
        folio = self.vm_normal_page(vma, a, pte)
        if not shared:
            self.ptep_get_and_clear(mm, a, p)
        self.tlb_remove_tlb_entry(tlb, a)
        if folio is None:           # the shared zero page
            return False
        delay = folio.kind != "anon" and pte.dirty
        if delay:
            self.folio_mark_dirty(folio)
            delayed_rmap.append(folio)
        else:
            self.folio_remove_rmap_pte(folio, vma)
        self.tlb_remove_page(tlb, folio)
        return delay

    def zap_empty_pte_table(self, mm, addr: int) -> bool:
        """mm/memory.c:zap_empty_pte_table (v7.0; try_get_and_clear_pmd before): the zap
        emptied the whole table under its ptl; clear the pmd if the pmd lock is free."""
        if not mm.page_table_lock.trylock(self.sched):
            return False
        self.set_pmd(mm, addr, None)
        mm.page_table_lock.unlock(self.sched)
        return True

    async def zap_pte_table_if_empty(self, tlb, mm, addr: int) -> None:
        """mm/memory.c:zap_pte_table_if_empty (v7.0; try_to_free_pte before): under the pmd
        lock and the ptl, recheck that every entry is none, then clear the pmd and free the
        table after the flush."""
        sched = self.sched
        await mm.page_table_lock.lock(sched, "zap_pte_table_if_empty:pmd_lock")
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None:
            mm.page_table_lock.unlock(sched)
            return
        table = pmd.table
        await table.ptl.lock(sched, "zap_pte_table_if_empty:spin_lock_nested(ptl)")
        empty = all(p is None for p in table.ptes)
        if empty:
            self.set_pmd(mm, addr, None)
        table.ptl.unlock(sched)
        mm.page_table_lock.unlock(sched)
        if empty:
            self.tlb_remove_table(tlb, table)                              # free_pte

    async def unmap_vmas(self, tlb, vmas, start: int, end: int, reclaim_pt: bool = False) -> None:
        """mm/memory.c:unmap_vmas -> unmap_page_range -> zap_pmd_range (v7.0)."""
        for vma in vmas:
            s = max(start, vma.vm_start)
            e = min(end, vma.vm_end)
            addr = s
            while addr < e:
                nxt = min(e, pmd_addr_start(addr) + PTRS_PER_PTE)
                await self.zap_pmd_range(tlb, vma, addr, nxt, reclaim_pt)
                addr = nxt

    async def zap_pmd_range(self, tlb, vma, addr: int, end: int, reclaim_pt: bool = False) -> None:
        """mm/memory.c:zap_pmd_range (v7.0) for one pmd."""
        if tlb.mm.pmd[pmd_index(addr)] is not None:
            await self.zap_pte_range(tlb, vma, addr, end, reclaim_pt)

    async def free_pgtables(self, tlb, mm, start: int, end: int) -> None:
        """mm/memory.c:free_pgtables (v7.0): unlink the detached VMAs from the rmap, then
        free every PTE table of [start, end) that no remaining VMA uses."""
        await self.rmap_lock.down_write(self.sched, "free_pgtables:unlink_anon_vmas")
        for vma in list(mm.detached_vmas):
            mm.detached_vmas.remove(vma)
        self.rmap_lock.up_write(self.sched)
        first = pmd_index(start)
        last = pmd_index(end - 1) if end > start else first - 1
        for idx in range(first, last + 1):
            lo, hi = idx * PTRS_PER_PTE, (idx + 1) * PTRS_PER_PTE
            if any(v.vm_start < hi and lo < v.vm_end for v in mm.vmas):
                continue
            if mm.pmd[idx] is not None:
                await self.free_pmd_range(tlb, mm, lo)

    async def free_pmd_range(self, tlb, mm, addr: int) -> None:
        """mm/memory.c:free_pmd_range (v7.0) for one pmd: free_pte_range clears the pmd and
        the table goes back after the flush (pte_free_tlb)."""
        pmd = mm.pmd[pmd_index(addr)]
        self.set_pmd(mm, addr, None)
        self.tlb_remove_table(tlb, pmd.table)

    async def unmap_region(self, mm, vmas, start: int, end: int) -> None:
        """mm/vma.c:unmap_region / vms_clear_ptes (v7.0)."""
        tlb = self.tlb_gather_mmu(mm)
        await self.unmap_vmas(tlb, vmas, start, end)
        await self.free_pgtables(tlb, mm, start, end)
        await self.tlb_finish_mmu(tlb)

    async def do_munmap(self, mm, start: int, npages: int) -> int:
        """mm/vma.c:do_vmi_munmap with unlock=true (v7.0): munmap(). Caller holds the
        write lock; it is dropped."""
        return await self.do_vmi_munmap(mm, start, npages, unlock=True)

    async def do_vmi_munmap(self, mm, start: int, npages: int, unlock: bool) -> int:
        """mm/vma.c:do_vmi_munmap -> do_vmi_align_munmap (v7.0): vms_gather_munmap_vmas
        splits and write-locks the VMAs and detaches them from the mm's tree; then
        vms_complete_munmap_vmas downgrades the lock (``unlock``), zaps and frees the
        tables (vms_clear_ptes: unmap_region), and only free_pgtables unlinks the detached
        VMAs from the rmap: until then reclaim still finds them. Caller holds the write
        lock; with ``unlock`` it is dropped, else kept (mremap)."""
        end = start + npages
        if npages <= 0 or start < 0 or end > USER_PAGES:
            if unlock:
                self.mmap_write_unlock(mm)
            return -EINVAL
        vmas = await self.vmas_in_range(mm, start, end)
        for vma in vmas:
            await self.vma_start_write(vma)
        for vma in vmas:
            self.remove_vma(mm, vma)
            mm.detached_vmas.append(vma)
        proc = mm.owner
        self.spec.unmap_begin(proc, range(start, end))
        for va in range(start, end):
            self.spec.view_reset(proc, va, None)
        if unlock:
            self.mmap_write_downgrade(mm)
        if vmas:
            await self.unmap_region(mm, vmas, start, end)
        if unlock:
            mm.mmap_lock.up_read(self.sched)
        self.spec.unmap_end(proc, range(start, end))
        return 0

    async def madvise_dontneed(self, mm, start: int, npages: int) -> int:
        """mm/madvise.c:do_madvise for MADV_DONTNEED (v7.0): madvise_init_tlb gathers for
        the whole call. Under the per-VMA lock (madvise_walk_vmas: try_vma_read_lock) the
        VMA lock goes before madvise_finish_tlb flushes and frees, so a VMA writer can run
        in between; on the mmap_lock fallback the gather is finished before
        madvise_unlock."""
        end = start + npages
        if npages <= 0 or start < 0 or end > USER_PAGES:
            return -EINVAL
        proc = mm.owner
        marks = self.spec.zap_begin(proc, range(start, end))
        self.spec.unmap_begin(proc, range(start, end))
        tlb = self.tlb_gather_mmu(mm)                                    # madvise_init_tlb
        ret = 0
        vma = await self.lock_vma_under_rcu(mm, start)
        if vma is not None and vma.vm_end >= end:
            await self.zap_page_range_single_batched(tlb, vma, start, end)
            self.vma_end_read(vma)
            await self.tlb_finish_mmu(tlb)                               # madvise_finish_tlb
        else:
            if vma is not None:
                self.vma_end_read(vma)
            await mm.mmap_lock.down_read(self.sched, "madvise_lock:mmap_read_lock")
            if self.range_has_hole(mm, start, end):
                ret = -ENOMEM          # madvise_walk_vmas: a hole, after the rest is done
            for vma in list(mm.vmas):
                if vma.vm_end <= start or vma.vm_start >= end:
                    continue
                await self.zap_page_range_single_batched(tlb, vma, max(start, vma.vm_start),
                                                         min(end, vma.vm_end))
            await self.tlb_finish_mmu(tlb)                               # madvise_finish_tlb
            mm.mmap_lock.up_read(self.sched)
        self.spec.zap_end(proc, marks)
        self.spec.unmap_end(proc, range(start, end))
        return ret

    async def zap_page_range_single_batched(self, tlb, vma, start: int, end: int) -> None:
        """mm/memory.c:zap_page_range_single_batched with reclaim_pt (v7.0): into the
        caller's gather."""
        await self.unmap_vmas(tlb, [vma], start, end, reclaim_pt=True)

    async def exit_mmap(self, mm) -> None:
        """mm/mmap.c:exit_mmap (v7.0): the last user is gone."""
        sched = self.sched
        await mm.mmap_lock.down_read(sched, "exit_mmap:mmap_read_lock")
        tlb = self.tlb_gather_mmu(mm, fullmm=True)
        await self.unmap_vmas(tlb, list(mm.vmas), 0, USER_PAGES)
        mm.mmap_lock.up_read(sched)
        await self.mmap_write_lock(mm, "exit_mmap:mmap_write_lock")
        for vma in list(mm.vmas):
            self.remove_vma(mm, vma)
            mm.detached_vmas.append(vma)
        await self.free_pgtables(tlb, mm, 0, USER_PAGES)
        await self.tlb_finish_mmu(tlb)
        mm.dead = True
        self.sched.log(mm, "dead", False, True)
        self.mmap_write_unlock(mm)
