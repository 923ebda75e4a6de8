"""mprotect(): change_pte_range and the "avoid the write fault" optimisation.

Mirrors mm/mprotect.c (v7.0): under mmap_lock (write), each VMA is
write-locked, its flags changed, and every present PTE rewritten with the
new protection. For writable private mappings a PTE is made writable
directly only if it maps a PageAnonExclusive anon page and no write fault
is needed for soft-dirty tracking (can_change_pte_writable, 64fe24a3e05e);
a shared mapping only if the PTE is already dirty. Write-protections are
flushed through the mmu_gather at the end, still under the write lock.

Protections are PROT_READ or PROT_READ|PROT_WRITE (PROT_NONE is not
modelled).
"""

from __future__ import annotations

from model.flags import EINVAL, ENOMEM, VM_READ, VM_SHARED, VM_WRITE
from model.memory import pte_needs_soft_dirty_wp, vma_page_prot_writable
from model.mm import vma_soft_dirty_enabled
from model.mmap import prot_to_vm_flags
from model.page import ANON
from model.pgtable import PTRS_PER_PTE, USER_PAGES, PtePointer, pmd_addr_start, pmd_index, pte_index


def vma_wants_manual_pte_write_upgrade(vma) -> bool:
    """include/linux/mm.h:vma_wants_manual_pte_write_upgrade (v7.0)."""
    if vma.vm_flags & VM_SHARED:
        return vma_soft_dirty_enabled(vma)     # vma_wants_writenotify() for shmem
    return bool(vma.vm_flags & VM_WRITE)


def maybe_change_pte_writable(vma, pte) -> bool:
    """mm/mprotect.c:maybe_change_pte_writable (v7.0)."""
    if not (vma.vm_flags & VM_WRITE):
        return False
    return not pte_needs_soft_dirty_wp(vma, pte)


class MprotectOps:
    """mm/mprotect.c."""

    def can_change_pte_writable(self, vma, addr: int, pte) -> bool:
        """mm/mprotect.c:can_change_pte_writable (v7.0)."""
        if not maybe_change_pte_writable(vma, pte):
            return False
        if vma.vm_flags & VM_SHARED:
            return pte.dirty                     # can_change_shared_pte_writable
        folio = self.vm_normal_page(vma, addr, pte)
        return folio is not None and folio.kind == ANON and folio.anon_exclusive

    async def do_mprotect(self, mm, start: int, npages: int, prot: str) -> int:
        """mm/mprotect.c:do_mprotect_pkey (v7.0): the VMAs from ``start`` on, in order;
        a hole ends the walk with -ENOMEM, after the VMAs before it changed."""
        end = start + npages
        if npages <= 0 or start < 0 or end > USER_PAGES or prot not in ("r", "rw"):
            return -EINVAL
        await self.mmap_write_lock(mm, "do_mprotect_pkey:mmap_write_lock_killable")
        vmas = [vma for vma in mm.vmas if vma.vm_start < end and vma.vm_end > start]
        if not vmas or vmas[0].vm_start > start:
            self.mmap_write_unlock(mm)
            return -ENOMEM
        newprot = prot_to_vm_flags(prot)
        tlb = self.tlb_gather_mmu(mm)
        error = 0
        tmp = vmas[0].vm_start
        for vma in vmas:
            if vma.vm_start != tmp:
                error = -ENOMEM
                break
            tmp = min(vma.vm_end, end)
            newflags = (vma.vm_flags & ~(VM_READ | VM_WRITE)) | newprot
            await self.mprotect_fixup(tlb, mm, vma, max(vma.vm_start, start), tmp, newflags)
        await self.tlb_finish_mmu(tlb, "do_mprotect_pkey:tlb_finish_mmu")
        self.mmap_write_unlock(mm)
        if not error and tmp < end:
            error = -ENOMEM
        return error

    async def mprotect_fixup(self, tlb, mm, vma, start: int, end: int, newflags: int) -> None:
        """mm/mprotect.c:mprotect_fixup (v7.0): a VMA whose flags stay is left whole;
        vma_modify_flags splits the others to [start, end)."""
        if newflags == vma.vm_flags:
            return
        if vma.vm_start < start:
            vma = await self.split_vma(mm, vma, start)
        if vma.vm_end > end:
            await self.split_vma(mm, vma, end)
        await self.vma_start_write(vma)
        self.sched.log_at(vma.vm_mm, "vma.vm_flags", vma.vm_start, vma.vm_flags, newflags)
        vma.vm_flags = newflags
        try_writable = vma_wants_manual_pte_write_upgrade(vma)
        await self.change_protection(tlb, vma, vma.vm_start, vma.vm_end, try_writable)

    async def change_protection(self, tlb, vma, start: int, end: int, try_writable: bool) -> None:
        """mm/mprotect.c:change_protection -> change_pmd_range (v7.0)."""
        addr = start
        while addr < end:
            nxt = min(end, pmd_addr_start(addr) + PTRS_PER_PTE)
            if vma.vm_mm.pmd[pmd_index(addr)] is not None and \
                    await self.walk_pmd("mprotect", vma, addr):
                await self.change_pte_range(tlb, vma, addr, nxt, try_writable)
            addr = nxt

    async def change_pte_range(self, tlb, vma, addr: int, end: int, try_writable: bool) -> None:
        """mm/mprotect.c:change_pte_range (v7.0)."""
        mm = vma.vm_mm
        sched = self.sched
        ptep = await self.pte_offset_map_lock(mm, addr, "change_pte_range:pte_offset_map_lock")
        if ptep is None:
            return
        await self.flush_tlb_batched_pending(mm)
        for a in range(addr, end):
            await sched.point("change_pte_range:ptep_get")
            p = PtePointer(ptep.table, pte_index(a))
            oldpte = self.ptep_get(p)
            if oldpte is None or not oldpte.present:
                continue
            ptent = oldpte._copy(write=vma_page_prot_writable(vma))      # pte_modify
            if try_writable and not ptent.write and self.can_change_pte_writable(vma, a, ptent):
                ptent = ptent._copy(write=True)
            self.set_pte_at(mm, a, p, ptent)                              # modify_prot_commit
            if oldpte.write and not ptent.write:                          # pte_needs_flush
                self.tlb_remove_tlb_entry(tlb, a)
        self.pte_unmap_unlock(ptep)
