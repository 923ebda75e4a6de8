"""mremap(): moving a mapping and its page tables.

Mirrors mm/mremap.c (v7.0) for mremap(addr, len, len, MREMAP_MAYMOVE |
MREMAP_FIXED, new_addr): do_mremap -> mremap_to -> move_vma ->
copy_vma_and_data -> move_page_tables, then unmap_source_vma. Everything
runs under mmap_lock for write, and the source VMA is write-locked
(vma_start_write in move_vma: "We don't want racing faults").

move_page_tables moves each page-table extent one of two ways:

* a whole table whose old and new ranges are both table-aligned moves as a
  pmd (move_normal_pmd, x86 has CONFIG_HAVE_MOVE_PMD): under the rmap locks
  and the pmd lock, the old pmd is cleared, the new one populated with the
  same table, and the old range flushed (flush_tlb_range: freed_tables, the
  paging-structure caches of the old pmd go too);
* otherwise entry by entry (move_ptes): under the rmap locks (when
  copy_vma says they are needed) and both tables' ptls, each entry is
  cleared at the old address and set at the new one, soft-dirty; a
  present one forces flush_tlb_range of the old range before the ptls
  are dropped ("make sure the physical page stays valid until the TLB
  entry for the old mapping has been flushed").

The pages do not move and keep their rmap index (anon pgoff): the new VMA
gets the old one's pgoff, so rmap finds them at the new address. If a new
table cannot be allocated, what was moved goes back (pmc_revert) and the
new mapping is unmapped instead of the old. MREMAP_DONTUNMAP, growing and
shrinking are not modelled.

Ghost bookkeeping (model/oracles/spec.py): the moved values now live at the
new addresses (``spec.move_begin`` / ``move_end``).
"""

from __future__ import annotations

from model.flags import EAGAIN, EFAULT, EINVAL, ENOMEM
from model.pgtable import (PTRS_PER_PTE, USER_PAGES, Pmd, PtePointer, pmd_addr_start, pmd_index,
                           pte_index, pte_mksoft_dirty, pte_swp_mksoft_dirty)


def move_soft_dirty_pte(pte):
    """mm/mremap.c:move_soft_dirty_pte (v7.0): mark moved entries soft-dirty."""
    if pte.present:
        return pte_mksoft_dirty(pte)
    return pte_swp_mksoft_dirty(pte)


class MremapOps:
    """mm/mremap.c."""

    async def do_mremap(self, mm, addr: int, npages: int, new_addr: int) -> int:
        """mm/mremap.c:do_mremap (v7.0), MREMAP_MAYMOVE | MREMAP_FIXED, old_len == new_len:
        the new address, or -errno."""
        end, new_end = addr + npages, new_addr + npages
        # check_mremap_params
        if npages <= 0 or addr < 0 or end > USER_PAGES or new_addr < 0 or new_end > USER_PAGES:
            return -EINVAL
        await self.mmap_write_lock(mm, "do_mremap:mmap_write_lock_killable")
        vma = mm.find_vma(addr)                                   # vma_lookup
        if vma is None:
            ret = -EFAULT
        else:
            ret = await self.mremap_to(mm, addr, npages, new_addr)
        self.mmap_write_unlock(mm)
        return ret

    async def mremap_to(self, mm, addr: int, npages: int, new_addr: int) -> int:
        """mm/mremap.c:mremap_to (v7.0)."""
        if addr < new_addr + npages and new_addr < addr + npages:    # vrm_overlaps
            return -EINVAL
        # MREMAP_FIXED: unmap the destination first (do_munmap, the lock stays held)
        ret = await self.do_vmi_munmap(mm, new_addr, npages, unlock=False)
        if ret:
            return ret
        vma = mm.find_vma(addr)
        if vma is None:
            return -EFAULT
        if npages > vma.vm_end - addr:                           # remap_is_valid
            return -EFAULT
        return await self.move_vma(mm, vma, addr, npages, new_addr)

    async def move_vma(self, mm, vma, addr: int, npages: int, new_addr: int) -> int:
        """mm/mremap.c:move_vma (v7.0)."""
        await self.vma_start_write(vma)                          # We don't want racing faults.
        proc = mm.owner
        marks = self.spec.move_begin(proc, addr, new_addr, npages)
        new_vma, moved, need_rmap_locks = await self.copy_vma_and_data(mm, vma, addr, npages,
                                                                       new_addr)
        if new_vma is None:
            self.spec.move_end(proc, addr, new_addr, npages, marks, False)
            return -ENOMEM
        if moved < npages:
            # On error, move entries back from new area to old, which will succeed since
            # page tables still there, and then proceed to unmap new area instead of old.
            await self.move_page_tables(new_vma, vma, new_addr, addr, moved, True)
            self.spec.move_end(proc, addr, new_addr, npages, marks, False)
            await self.do_vmi_munmap(mm, new_addr, npages, unlock=False)
            return -ENOMEM
        await self.do_vmi_munmap(mm, addr, npages, unlock=False)    # unmap_source_vma
        self.spec.move_end(proc, addr, new_addr, npages, marks, True)
        return new_addr

    async def copy_vma_and_data(self, mm, vma, addr: int, npages: int, new_addr: int):
        """mm/mremap.c:copy_vma_and_data (v7.0): (the new VMA or None, pages moved,
        need_rmap_locks)."""
        new_vma, need_rmap_locks = await self.copy_vma(mm, vma, addr, npages, new_addr)
        if new_vma is None:
            return None, 0, need_rmap_locks
        moved = await self.move_page_tables(vma, new_vma, addr, new_addr, npages,
                                            need_rmap_locks)
        return new_vma, moved, need_rmap_locks

    async def copy_vma(self, mm, vma, addr: int, npages: int, new_addr: int):
        """mm/vma.c:copy_vma (v7.0), no merge: a VMA at ``new_addr`` with the source's
        flags, file, anon_vma and pgoff, linked write-locked (vma_link) into the rmap
        under its lock (anon_vma_clone, vma_link_file). need_rmap_locks is false: the new
        VMA comes after the old one in rmap traversal order, so a walk sees the old PTE,
        the new one, or both (the kernel needs the locks only when copy_vma merged)."""
        pgoff = vma.linear_page_index(addr)
        if self.sched.should_fail("copy_vma:vm_area_dup"):
            return None, False
        new = self._new_vma(mm, new_addr, new_addr + npages, vma.vm_flags, vma.vm_file, pgoff)
        new.anon_vma = vma.anon_vma
        await self.vma_start_write(new)
        await self.rmap_link_lock(new, "copy_vma:anon_vma_clone")
        self.insert_vma(mm, new)
        return new, False

    async def move_page_tables(self, vma, new_vma, old_addr: int, new_addr: int,
                               npages: int, need_rmap_locks: bool) -> int:
        """mm/mremap.c:move_page_tables (v7.0): the pages moved (less than ``npages`` when a
        table could not be allocated)."""
        mm = vma.vm_mm
        old_end = old_addr + npages
        orig_old = old_addr
        old_addr, new_addr = self.try_realign_addr(vma, new_vma, old_addr, new_addr, npages)
        while old_addr < old_end:
            await self.sched.point("move_page_tables:cond_resched")
            extent = min(pmd_addr_start(old_addr) + PTRS_PER_PTE, old_end) - old_addr
            extent = min(extent, pmd_addr_start(new_addr) + PTRS_PER_PTE - new_addr)
            if mm.pmd[pmd_index(old_addr)] is None:               # get_old_pmd
                old_addr, new_addr = old_addr + extent, new_addr + extent
                continue
            # designs that share tables break the old one here (v4 hooks move_page_tables)
            await self.walk_pmd("mremap", vma, old_addr)
            if extent == PTRS_PER_PTE and \
                    await self.move_pgt_entry(vma, old_addr, new_addr):
                old_addr, new_addr = old_addr + extent, new_addr + extent
                continue
            if mm.pmd[pmd_index(old_addr)] is None:
                old_addr, new_addr = old_addr + extent, new_addr + extent
                continue
            if await self.pte_alloc(new_vma.vm_mm, new_addr, "move_page_tables"):
                break
            if await self.move_ptes(vma, old_addr, new_addr, extent, need_rmap_locks) < 0:
                continue                                           # goto again
            old_addr, new_addr = old_addr + extent, new_addr + extent
        return max(0, old_addr - orig_old)                         # pmc_progress

    def try_realign_addr(self, vma, new_vma, old_addr: int, new_addr: int, npages: int):
        """mm/mremap.c:try_realign_addr (v7.0): when the move reaches a table boundary
        and both addresses sit at the same offset in their tables, start both at the table
        boundary below, so the table moves whole -- if no other mapping lies there."""
        old_align = old_addr % PTRS_PER_PTE
        if npages < PTRS_PER_PTE - old_align or old_align == 0:
            return old_addr, new_addr
        if old_align != new_addr % PTRS_PER_PTE:
            return old_addr, new_addr
        for v, a in ((vma, old_addr), (new_vma, new_addr)):       # can_align_down
            low = a - old_align
            if v.vm_start != a or any(o.vm_start < a and low < o.vm_end
                                      for o in v.vm_mm.vmas if o is not v):
                return old_addr, new_addr
        return old_addr - old_align, new_addr - old_align

    async def move_pgt_entry(self, vma, old_addr: int, new_addr: int) -> bool:
        """mm/mremap.c:move_pgt_entry (v7.0), NORMAL_PMD: under the rmap locks."""
        sched = self.sched
        await self.rmap_lock.down_write(sched, "move_pgt_entry:take_rmap_locks")
        moved = await self.move_normal_pmd(vma, old_addr, new_addr)
        self.rmap_lock.up_write(sched)
        return moved

    async def move_normal_pmd(self, vma, old_addr: int, new_addr: int) -> bool:
        """mm/mremap.c:move_normal_pmd (v7.0): move the whole table to the new pmd."""
        mm = vma.vm_mm
        sched = self.sched
        if mm.pmd[pmd_index(new_addr)] is not None:
            return False                   # WARN_ON_ONCE(!pmd_none(*new_pmd))
        await mm.page_table_lock.lock(sched, "move_normal_pmd:pmd_lock")
        pmd = mm.pmd[pmd_index(old_addr)]
        if pmd is None:                    # Racing with collapse?
            mm.page_table_lock.unlock(sched)
            return False
        self.set_pmd(mm, old_addr, None)                           # pmd_clear
        self.set_pmd(mm, new_addr, Pmd(pmd.table, True))           # pmd_populate
        await self.flush_tlb_range(vma, old_addr, old_addr + PTRS_PER_PTE,
                                   "move_normal_pmd:flush_tlb_range")
        mm.page_table_lock.unlock(sched)
        return True

    async def move_ptes(self, vma, old_addr: int, new_addr: int, extent: int,
                        need_rmap_locks: bool) -> int:
        """mm/mremap.c:move_ptes (v7.0): 0, or -EAGAIN when the old table went away."""
        mm = vma.vm_mm
        sched = self.sched
        old_end = old_addr + extent
        if need_rmap_locks:
            await self.rmap_lock.down_write(sched, "move_ptes:take_rmap_locks")
        err = 0
        old_ptep = await self.pte_offset_map_lock(mm, old_addr, "move_ptes:pte_offset_map_lock")
        new_ptep = await self.pte_offset_map_rw_nolock(mm, new_addr) \
            if old_ptep is not None else None
        if old_ptep is None or new_ptep is None:
            if old_ptep is not None:
                self.pte_unmap_unlock(old_ptep)
            err = -EAGAIN
        else:
            old_ptl, new_ptl = old_ptep.table.ptl, new_ptep.table.ptl
            if new_ptl is not old_ptl:
                await new_ptl.lock(sched, "move_ptes:spin_lock_nested(new_ptl)")
            await self.flush_tlb_batched_pending(mm)
            force_flush = False
            src, dst = old_addr, new_addr
            while src < old_end:
                await sched.point("move_ptes:ptep_get")
                old_p = PtePointer(old_ptep.table, pte_index(src))
                old_pte = self.ptep_get(old_p)
                if old_pte is not None:
                    # If we are remapping a valid PTE, make sure to flush TLB before we
                    # drop the PTL for the PTE.
                    if old_pte.present:
                        force_flush = True
                    pte = self.ptep_get_and_clear(mm, src, old_p)
                    pte = move_soft_dirty_pte(pte)
                    self.set_pte_at(mm, dst, PtePointer(new_ptep.table, pte_index(dst)), pte)
                src, dst = src + 1, dst + 1
            if force_flush:
                await self.flush_tlb_range(vma, old_addr, old_end, "move_ptes:flush_tlb_range")
            if new_ptl is not old_ptl:
                new_ptl.unlock(sched)
            self.pte_unmap_unlock(old_ptep)
        if need_rmap_locks:
            self.rmap_lock.up_write(sched)
        return err

