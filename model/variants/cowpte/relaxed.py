"""COW PTE, the relaxed form David Hildenbrand proposed in the RFC v2 thread.

<c12f848d-cb54-2998-8650-2c2a5707932d@redhat.com> (28 Sep 2022) and
<834c258d-4c0e-1753-3608-8a7e28c14d07@redhat.com> (29 Sep 2022): "During
fork(), we'd do exactly what we used to do to PTEs (increment mapcount,
refcount, trying to clear PageAnonExclusive, map the page R/O, duplicate
swap entries; all while holding the page table lock), however, sharing the
prepared page table with the child process using COW after we prepared it.
Any [...] modification attempts require breaking COW -- copying the page
table for the faulting process." Pinned anon pages fall back to the slow
path (copying the table); R/O pins of shared pages take
FAULT_FLAG_UNSHARE, which breaks the table; GUP marks nothing.

The thread leaves the details open ("devil is in the detail (page table
lock, TLB flushing)"); this variant fills them the way the proposal needs
them to be, so that it is the design to check against, not a strawman:
* fork does the ordinary per-PTE work (copy_pte_range) into a child table;
  once every VMA of the table is copied, if the child's table came out
  identical to the parent's (no page was copied for the child because it
  may be pinned), the child's pmd and the parent's point at the parent's
  table, read-only, with a table reference for each -- under both ptls and
  the pmd locks -- and the duplicate goes (RCU);
* break: under the shared table's ptl, re-check that the pmd still points
  at it; as the last user make the pmd writable; otherwise copy the
  entries into a table allocated beforehand (it cannot fail: __GFP_NOFAIL,
  the OOM killer handles exhaustion, so no caller fails halfway), replace
  the pmd under the pmd lock (never through pmd_none), drop the reference
  and flush this mm's TLB for the range;
* nothing modifies a shared table in place: every fault under a
  write-protected table pmd breaks first, and every path that locks a
  table to change it (pte_offset_map_lock) breaks a shared one first;
  readers (GUP's follow_page_pte) may read a shared table; reclaim's rmap
  walk, which does not hold that mm's mmap_lock, must not replace its page
  table and leaves a page mapped through a shared table resident.
"""

from __future__ import annotations

from model.pgtable import Pmd, PtePointer, pmd_index, pte_index
from model.variants import register
from model.variants.cowpte.common import CowPteKernel


@register
class CowPteRelaxed(CowPteKernel):
    name = "cowpte-relaxed"
    description = ("COW PTE, relaxed (D. Hildenbrand): share the table fork prepared; break on "
                   "every modification")
    patch = "<c12f848d-cb54-2998-8650-2c2a5707932d@redhat.com> (proposal, on v6.0)"
    affected = "proposal, not implemented upstream"

    def pte_offset_map(self, mm, addr: int):
        """Read-only walkers may read a shared table: its write-protected pmd is not bad."""
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is not None and not pmd.write and not pmd.table.freed:
            return PtePointer(pmd.table, pte_index(addr))
        return super().pte_offset_map(mm, addr)

    # -- fork -----------------------------------------------------------------------------------
    async def copy_pmd_range(self, dst_vma, src_vma, addr: int, end: int) -> int:
        """copy_pmd_range: the ordinary per-PTE fork work into a child table, then, once
        every VMA of the table is done, share the parent's table instead if the child's
        came out identical (no page was copied for the child: none maybe pinned)."""
        src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
        dst_pmd = dst_mm.pmd[pmd_index(addr)]
        if dst_pmd is not None and not dst_pmd.write:
            return 0                            # shared already
        ret = await self.copy_pte_range(dst_vma, src_vma, addr, end)
        if ret:
            return ret
        _, tend = self.table_range(addr)
        if any(end <= v.vm_start < tend for v in src_mm.vmas):
            return 0                            # a later VMA of this table is still to copy
        await self.share_prepared_table(src_mm, dst_mm, addr)
        return 0

    async def share_prepared_table(self, src_mm, dst_mm, addr: int) -> None:
        sched = self.sched
        src, dst = src_mm.pmd[pmd_index(addr)], dst_mm.pmd[pmd_index(addr)]
        if src is None or dst is None or src.table is dst.table:
            return
        with self.cow_pte_operation():
            await src.table.ptl.lock(sched, "share_prepared_table:spin_lock(src_ptl)")
            await dst.table.ptl.lock(sched, "share_prepared_table:spin_lock(dst_ptl)")
            if not all(_same_entry(a, b) for a, b in zip(src.table.ptes, dst.table.ptes)):
                dst.table.ptl.unlock(sched)
                src.table.ptl.unlock(sched)
                return
            self.pmd_get_pte(src.table)
            await dst_mm.page_table_lock.lock(sched, "share_prepared_table:pmd_lock(dst)")
            self.set_pmd(dst_mm, addr, Pmd(src.table, False))
            dst_mm.page_table_lock.unlock(sched)
            await src_mm.page_table_lock.lock(sched, "share_prepared_table:pmd_lock(src)")
            self.set_pmd(src_mm, addr, Pmd(src.table, False))
            src_mm.page_table_lock.unlock(sched)
            for i, pte in enumerate(dst.table.ptes):
                if pte is not None:            # the duplicates go; their accounting stays
                    dst.table.ptes[i] = None
                    self.sched.log_at(dst.table, "pte", pmd_index(addr) * len(dst.table.ptes) + i,
                                      pte, None)
            dst.table.ptl.unlock(sched)
            src.table.ptl.unlock(sched)
            self.free_table_rcu(dst.table)

    # -- breaking ---------------------------------------------------------------------------
    async def break_cow_pte(self, mm, addr: int) -> None:
        """Give ``mm`` a private copy of the shared table at ``addr`` (never fails)."""
        sched = self.sched
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None or pmd.write:
            return
        start, end = self.table_range(addr)
        with self.cow_pte_operation():
            new = self.pte_alloc_one("break_cow_pte:pte_alloc_one", nofail=True)
            old = pmd.table
            await old.ptl.lock(sched, "break_cow_pte:spin_lock(ptl)")
            cur = mm.pmd[pmd_index(addr)]
            if cur is None or cur.table is not old or cur.write:
                old.ptl.unlock(sched)              # another thread of this mm broke it
                self.pte_free(new)
                return
            await mm.page_table_lock.lock(sched, "break_cow_pte:pmd_lock")
            if old.refcount == 1:
                self.pmd_mkwrite_at(mm, addr)      # the last user keeps the table
                mm.page_table_lock.unlock(sched)
                old.ptl.unlock(sched)
                self.pte_free(new)
                return
            for a in range(start, end):
                pte = old.ptes[pte_index(a)]
                if pte is not None:
                    self.set_pte_at(mm, a, PtePointer(new, pte_index(a)), pte)
            self.set_pmd(mm, addr, Pmd(new, True))
            mm.page_table_lock.unlock(sched)
            self.pmd_put_pte_unless_last(old)
            old.ptl.unlock(sched)
            await sched.point("break_cow_pte:flush_tlb_range")
            self._tlb_drop(mm, start, end)

    # -- nothing modifies a shared table in place ------------------------------------------
    async def pte_offset_map_lock(self, mm, addr: int, label: str, readonly: bool = False):
        """Every path that locks a table to change it breaks a shared one first; readers
        (follow_page_pte) lock the shared table itself. A walker without the mm's
        mmap_lock (reclaim's rmap walk) must not replace that mm's page table under it:
        it treats a shared table as not mapping the page (the page stays resident until
        the table is unshared, as a pinned page does)."""
        while True:
            pmd = mm.pmd[pmd_index(addr)]
            if not readonly and pmd is not None and not pmd.write:
                if not self._holds_mmap_lock(mm):
                    return None
                await self.break_cow_pte(mm, addr)
            ptep = await super().pte_offset_map_lock(mm, addr, label, readonly)
            pmd = mm.pmd[pmd_index(addr)]
            if ptep is None or readonly or pmd.write:
                return ptep
            self.pte_unmap_unlock(ptep)            # fork shared it while we waited

    def _holds_mmap_lock(self, mm) -> bool:
        cur = self.sched.current
        return mm.mmap_lock.writer is cur or cur in mm.mmap_lock.readers

    async def _handle_mm_fault(self, vma, address: int, flags: int) -> int:
        """__handle_mm_fault: a fault under a write-protected table pmd breaks it first
        (handle_pte_fault locks the table it read the PTE from directly)."""
        await self.sched.point("__handle_mm_fault:break_cow_pte")
        await self.break_cow_pte(vma.vm_mm, address)
        return await super()._handle_mm_fault(vma, address, flags)


def _same_entry(parent, child) -> bool:
    """The child's entry is the parent's, as fork made it (the child's is old)."""
    if parent is None or child is None:
        return parent is child
    return parent._copy(young=False) == child._copy(young=False)
