"""fork(): dup_mmap and copy_page_range.

Mirrors mm/mmap.c:dup_mmap and mm/memory.c:copy_page_range ..
copy_present_ptes (v7.0), order-0 folios:

* the parent's mmap_lock is held for write and (v6.4+, fb49c455323f "fork:
  lock VMAs of the parent process when forking") every parent VMA is
  write-locked, so no page fault runs in the parent during fork;
* for COW mappings the copy runs inside a write_protect_seq write section,
  which GUP-fast (FOLL_PIN) checks;
* per PTE, under both ptls: an anon page is shared only after
  folio_try_dup_anon_rmap_pte cleared PageAnonExclusive -- which fails for
  a maybe-pinned page, and then the child gets a copy (copy_present_page,
  needing a preallocated page: drop the locks, allocate, retry); a shared
  page is write-protected in parent and child; a swap entry is duplicated
  and loses its exclusive bit in both;
* the parent's TLB is flushed once, at the end of dup_mmap, before its
  mmap_lock is released;
* a VM_DONTCOPY VMA (MADV_DONTFORK) is left out of the child; a
  VM_WIPEONFORK one (MADV_WIPEONFORK) is created empty: no anon_vma, no
  copy_page_range.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import EAGAIN, ENOMEM, VM_DONTCOPY, VM_SHARED, VM_WIPEONFORK, is_cow_mapping
from model.memory import maybe_mkwrite
from model.mm import VmArea
from model.page import ANON
from model.pgtable import (PTRS_PER_PTE, USER_PAGES, PtePointer, mk_pte, pmd_addr_start,
                           pmd_index, pte_index, pte_mkclean, pte_mkdirty, pte_mkold,
                           pte_swp_clear_exclusive, pte_wrprotect)


class ForkOps:
    """kernel/fork.c and the copy half of mm/memory.c."""

    async def dup_mmap(self, mm, oldmm) -> int:
        """mm/mmap.c:dup_mmap (v7.0)."""
        sched = self.sched
        await self.mmap_write_lock(oldmm, "dup_mmap:mmap_write_lock_killable")
        self.fork_locked_parent(oldmm)
        await self.mmap_write_lock(mm, "dup_mmap:mmap_write_lock_nested")
        oldmm.fork_in_progress += 1
        retval = 0
        for mpnt in list(oldmm.vmas):
            retval = await self.dup_mmap_lock_vma(mpnt)
            if retval:
                break
            self.fork_window_lock_vma(oldmm, mpnt)             # ghost: the VMA is locked
            if mpnt.vm_flags & VM_DONTCOPY:
                continue                              # vma_iter_clear_gfp: not in the child
            tmp = VmArea(mm, mpnt.vm_start, mpnt.vm_end, mpnt.vm_flags, mpnt.vm_file, mpnt.vm_pgoff)
            if tmp.vm_flags & VM_WIPEONFORK:
                # VM_WIPEONFORK gets a clean slate in the child. Don't prepare anon_vma
                # until fault since we don't copy page for current vma.
                tmp.anon_vma = False
            else:
                if mpnt.anon_vma and sched.should_fail("dup_mmap:anon_vma_fork"):
                    retval = -ENOMEM
                    break
                tmp.anon_vma = mpnt.anon_vma
            await self.rmap_link_lock(tmp, "dup_mmap:anon_vma_fork")
            self.insert_vma(mm, tmp)
            if not tmp.vm_flags & VM_WIPEONFORK:
                retval = await self.copy_page_range(tmp, mpnt)
            if retval:
                break
        if retval:
            # tear down the partially built child (unmap_region + tear_down_vmas)
            vmas = list(mm.vmas)
            for vma in vmas:
                self.remove_vma(mm, vma)
                mm.detached_vmas.append(vma)
            await self.unmap_region(mm, vmas, 0, USER_PAGES)
            self.mmap_write_unlock(mm)
        else:
            self.mmap_write_unlock(mm)
        oldmm.fork_in_progress -= 1
        await self.flush_tlb_mm(oldmm, "dup_mmap:flush_tlb_mm")
        self.fork_window_close()                               # ghost
        self.mmap_write_unlock(oldmm)
        return retval

    async def dup_mmap_lock_vma(self, mpnt) -> int:
        """vma_start_write_killable(mpnt) at the top of dup_mmap's loop (v6.4+)."""
        await self.vma_start_write(mpnt)
        return 0

    def vma_needs_copy(self, dst_vma, src_vma) -> bool:
        """mm/memory.c:vma_needs_copy (v7.0): only VMAs with anon pages copy page tables."""
        return bool(src_vma.anon_vma)

    async def copy_page_range(self, dst_vma, src_vma) -> int:
        """mm/memory.c:copy_page_range (v7.0)."""
        if not self.vma_needs_copy(dst_vma, src_vma):
            return 0
        src_mm = src_vma.vm_mm
        is_cow = is_cow_mapping(src_vma.vm_flags)
        if is_cow:
            if not self.vma_is_write_locked(src_vma):
                raise KernelBug("copy_page_range: source VMA is not write-locked",
                                mm=src_mm.mid, va=src_vma.vm_start)
            src_mm.write_protect_seq.raw_write_seqcount_begin(self.sched)
        ret = 0
        addr = src_vma.vm_start
        while addr < src_vma.vm_end:
            nxt = min(src_vma.vm_end, pmd_addr_start(addr) + PTRS_PER_PTE)
            if src_mm.pmd[pmd_index(addr)] is not None:
                if await self.copy_pmd_range(dst_vma, src_vma, addr, nxt):
                    ret = -ENOMEM
                    break
            addr = nxt
        if is_cow:
            src_mm.write_protect_seq.raw_write_seqcount_end(self.sched)
        return ret

    async def copy_pmd_range(self, dst_vma, src_vma, addr: int, end: int) -> int:
        """mm/memory.c:copy_pmd_range (v7.0), one PMD: designs that share tables override."""
        return await self.copy_pte_range(dst_vma, src_vma, addr, end)

    async def copy_pte_range(self, dst_vma, src_vma, addr: int, end: int, src_pmd=None) -> int:
        """mm/memory.c:copy_pte_range (v7.0). ``src_pmd``: a pmd value to copy from instead
        of the source mm's live pmd (the COW PTE designs copy a shared table they just
        unhooked)."""
        sched = self.sched
        dst_mm = dst_vma.vm_mm
        src_mm = src_vma.vm_mm
        prealloc = None
        ret = 0
        while True:                                      # again:
            if await self.pte_alloc(dst_mm, addr, "copy_pte_range"):
                ret = -ENOMEM
                break
            dst_ptep = await self.pte_offset_map_lock(dst_mm, addr,
                                                      "copy_pte_range:pte_alloc_map_lock(dst)")
            if dst_ptep is None:
                ret = -ENOMEM
                break
            if src_pmd is not None:
                src_ptep = PtePointer(src_pmd.table, pte_index(addr))
            else:
                src_ptep = self.pte_offset_map(src_mm, addr)
            if src_ptep is None:
                self.pte_unmap_unlock(dst_ptep)
                break
            src_ptl = src_ptep.table.ptl
            await src_ptl.lock(sched, "copy_pte_range:spin_lock_nested(src_ptl)")
            ret = 0
            while addr < end:
                await sched.point("copy_pte_range:ptep_get")
                src_p = PtePointer(src_ptep.table, pte_index(addr))
                dst_p = PtePointer(dst_ptep.table, pte_index(addr))
                ptent = self.ptep_get(src_p)
                if ptent is None:
                    addr += 1
                    continue
                if not ptent.present:
                    ret = self.copy_nonpresent_pte(dst_mm, src_mm, dst_p, src_p,
                                                   dst_vma, src_vma, addr)
                    addr += 1
                    continue
                ret, prealloc = await self.copy_present_ptes(dst_vma, src_vma, dst_p, src_p,
                                                             ptent, addr, prealloc)
                if ret == -EAGAIN:
                    break
                if prealloc is not None:
                    # pre-alloc page cannot be reused by next time
                    self.folio_put(prealloc)
                    prealloc = None
                ret = 0
                addr += 1
            src_ptl.unlock(sched)
            self.pte_unmap_unlock(dst_ptep)
            if ret == -EAGAIN:
                prealloc = self.alloc_folio(ANON, "copy_pte_range:folio_prealloc")
                if prealloc is None:
                    return -ENOMEM
                ret = 0
                await sched.point("copy_pte_range:again")
                continue
            break
        if prealloc is not None:
            self.folio_put(prealloc)
        return ret

    def copy_nonpresent_pte(self, dst_mm, src_mm, dst_p, src_p, dst_vma, src_vma,
                            addr: int) -> int:
        """mm/memory.c:copy_nonpresent_pte (v7.0), swap entries."""
        orig = self.ptep_get(src_p)
        pte = orig
        self.swap_dup_entry_direct(orig.swp)
        # Mark the swap entry as shared.
        if orig.swp_exclusive:
            pte = pte_swp_clear_exclusive(orig)
            self.set_pte_at(src_mm, addr, src_p, pte)
        self.set_pte_at(dst_mm, addr, dst_p, pte)
        return 0

    def copy_present_page(self, dst_vma, src_vma, dst_p, src_p, addr: int, prealloc, folio):
        """mm/memory.c:copy_present_page (v7.0): the child gets a copy of a maybe-pinned
        page; the parent's PTE is left as it is."""
        if prealloc is None:
            return -EAGAIN, None
        new = prealloc
        new.data = folio.data
        self.sched.log(new, "data", 0, new.data)
        self.folio_add_new_anon_rmap(new, dst_vma, addr, True)
        pte = maybe_mkwrite(pte_mkdirty(mk_pte(new)), dst_vma)
        self.set_pte_at(dst_vma.vm_mm, addr, dst_p, pte)
        return 0, None

    def _copy_present_ptes(self, dst_vma, src_vma, dst_p, src_p, pte, addr: int) -> None:
        """mm/memory.c:__copy_present_ptes (v7.0)."""
        src_mm = src_vma.vm_mm
        # If it's a COW mapping, write protect it both processes.
        if is_cow_mapping(src_vma.vm_flags) and pte.write:
            self.set_pte_at(src_mm, addr, src_p, pte_wrprotect(self.ptep_get(src_p)))
            pte = pte_wrprotect(pte)
        # If it's a shared mapping, mark it clean in the child.
        if src_vma.vm_flags & VM_SHARED:
            pte = pte_mkclean(pte)
        pte = pte_mkold(pte)
        self.set_pte_at(dst_vma.vm_mm, addr, dst_p, pte)

    async def copy_present_ptes(self, dst_vma, src_vma, dst_p, src_p, pte, addr: int, prealloc):
        """mm/memory.c:copy_present_ptes (v7.0), the small-folio path.
        Returns (1 or -EAGAIN, the preallocated page if not consumed). GUP-fast, which
        takes no lock, may run between the rmap duplication and the write-protect."""
        folio = self.vm_normal_page(src_vma, addr, pte)
        if folio is not None:
            self.folio_get(folio)
            if folio.kind == ANON:
                # If this page may have been pinned by the parent process, copy the
                # page immediately for the child.
                if self.folio_try_dup_anon_rmap_pte(folio, dst_vma, src_vma):
                    self.folio_put(folio)
                    err, prealloc = self.copy_present_page(dst_vma, src_vma, dst_p, src_p,
                                                           addr, prealloc, folio)
                    return (err if err else 1), prealloc
                if folio.anon_exclusive:
                    raise KernelBug(f"fork shares {folio.name} while PageAnonExclusive",
                                    pfn=folio.pfn)
            else:
                self.folio_dup_file_rmap_pte(folio, dst_vma)
        await self.sched.point("copy_present_ptes:__copy_present_ptes")
        self._copy_present_ptes(dst_vma, src_vma, dst_p, src_p, pte, addr)
        return 1, prealloc
