"""/proc/pid/clear_refs (soft-dirty) and /proc/pid/mem writes.

Mirrors fs/proc/task_mmu.c:clear_refs_write (CLEAR_REFS_SOFT_DIRTY) and
fs/proc/base.c:mem_rw -> mm/memory.c:__access_remote_vm (v7.0).

clear_refs write-protects every PTE and clears its soft-dirty bit, except
writable PTEs of maybe-pinned pages (pte_is_pinned, 9348b73c2e1b), under
mmap_lock (write) with the TLB flush deferred to the end.

A /proc/pid/mem write is a FOLL_FORCE|FOLL_WRITE get_user_pages_remote
followed by a kernel store into the returned page: this is the path of
Dirty COW.
"""

from __future__ import annotations

from model.flags import EIO, FOLL_FORCE, FOLL_WRITE, VM_SOFTDIRTY, is_cow_mapping
from model.page import folio_maybe_dma_pinned
from model.pgtable import (PTRS_PER_PTE, PtePointer, pmd_addr_start, pmd_index,
                           pte_clear_soft_dirty, pte_index, pte_wrprotect)


class ProcOps:
    """fs/proc."""

    def pte_is_pinned(self, vma, addr: int, pte) -> bool:
        """fs/proc/task_mmu.c:pte_is_pinned (v7.0)."""
        if not pte.write:
            return False
        if not is_cow_mapping(vma.vm_flags):
            return False
        if not vma.vm_mm.has_pinned:
            return False
        folio = self.vm_normal_page(vma, addr, pte)
        if folio is None:
            return False
        return folio_maybe_dma_pinned(folio)

    def clear_soft_dirty(self, vma, addr: int, ptep) -> None:
        """fs/proc/task_mmu.c:clear_soft_dirty (v7.0)."""
        pte = self.ptep_get(ptep)
        if pte is None:
            return
        if pte.present:
            if self.pte_is_pinned(vma, addr, pte):
                return
            new = pte_clear_soft_dirty(pte_wrprotect(pte))
        else:
            new = pte._copy(soft_dirty=False)
        if new != pte:
            self.set_pte_at(vma.vm_mm, addr, ptep, new)

    async def clear_refs_pte_range(self, vma, addr: int, end: int) -> None:
        """fs/proc/task_mmu.c:clear_refs_pte_range (v7.0), CLEAR_REFS_SOFT_DIRTY."""
        mm = vma.vm_mm
        ptep = await self.pte_offset_map_lock(mm, addr, "clear_refs_pte_range:pte_offset_map_lock")
        if ptep is None:
            return
        for a in range(addr, end):
            await self.sched.point("clear_refs_pte_range:clear_soft_dirty")
            self.clear_soft_dirty(vma, a, PtePointer(ptep.table, pte_index(a)))
        self.pte_unmap_unlock(ptep)

    async def clear_refs_soft_dirty(self, mm) -> int:
        """fs/proc/task_mmu.c:clear_refs_write with "4" (v7.0)."""
        await self.mmap_write_lock(mm, "clear_refs_write:mmap_write_lock_killable")
        for vma in mm.vmas:
            if vma.vm_flags & VM_SOFTDIRTY:
                self.sched.log_at(mm, "vma.vm_flags", vma.vm_start, vma.vm_flags,
                                  vma.vm_flags & ~VM_SOFTDIRTY)
                vma.vm_flags &= ~VM_SOFTDIRTY
        self.inc_tlb_flush_pending(mm)
        for vma in list(mm.vmas):
            await self.vma_start_write(vma)               # walk_lock = PGWALK_WRLOCK
            addr = vma.vm_start
            while addr < vma.vm_end:
                nxt = min(vma.vm_end, pmd_addr_start(addr) + PTRS_PER_PTE)
                if mm.pmd[pmd_index(addr)] is not None and \
                        await self.walk_pmd("clear_refs", vma, addr):
                    await self.clear_refs_pte_range(vma, addr, nxt)
                addr = nxt
        await self.flush_tlb_mm(mm, "clear_refs_write:flush_tlb_mm")
        self.dec_tlb_flush_pending(mm)
        self.mmap_write_unlock(mm)
        return 0

    async def access_remote_vm_write(self, mm, addr: int, gup_flags: int):
        """mm/memory.c:__access_remote_vm (v7.0) writing one value: the value written,
        or None when nothing was transferred."""
        sched = self.sched
        await mm.mmap_lock.down_read(sched, "__access_remote_vm:mmap_read_lock_killable")
        if mm.find_vma(addr) is None:
            mm.mmap_lock.up_read(sched)
            return None
        folio = await self.get_user_pages_remote(mm, addr, gup_flags)
        if isinstance(folio, int):
            mm.mmap_lock.up_read(sched)
            return None
        vma = mm.find_vma(addr)
        self.check_foll_write_target(mm, vma, addr, folio, "/proc/pid/mem write")
        await sched.point("__access_remote_vm:copy_to_user_page")
        if folio.freed:
            self.bug(f"/proc/pid/mem writes to freed page {folio.name}", pfn=folio.pfn)
        data = self.kernel_store_value(mm, addr, vma, folio)
        sched.log(folio, "data", folio.data, data)
        folio.data = data
        self.folio_mark_dirty(folio)
        self.folio_put(folio)
        mm.mmap_lock.up_read(sched)
        return data

    async def mem_rw_write(self, target, addr: int):
        """fs/proc/base.c:mem_rw (v7.0), write=1, FOLL_FORCE allowed (the default)."""
        mm = target.mm
        if mm.mm_users == 0 or mm.dead:               # mmget_not_zero
            return -EIO
        mm.mm_users += 1
        data = await self.access_remote_vm_write(mm, addr, FOLL_WRITE | FOLL_FORCE)
        await self.mmput(mm)
        return data if data is not None else -EIO
