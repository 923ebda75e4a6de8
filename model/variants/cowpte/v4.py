"""COW PTE, v4: fork accounts every page in place, then shares the prepared table.

"[PATCH v4 00/14] Introduce Copy-On-Write to Page Table", Chih-En Lin,
7 Feb 2023, <20230207035139.272707-1-shiyn.lin@gmail.com>, on v6.2-rc7.
Each method names the patch it follows (NN/14 is Message-Id
<20230207035139.272707-(NN+1)-shiyn.lin@gmail.com>).

* fork (02/14, copy_cow_pte_range): under the source ptl take a table
  reference and install the child's pmd; then run the ordinary per-PTE
  fork work on the one table, in place (mapcount and refcount up,
  PageAnonExclusive cleared, write-protect, swap_duplicate); last, with no
  lock, write-protect both pmds. A page that may be pinned stops it
  (-EAGAIN): recover_pte_range gives the child a private table with the
  entries done so far and the ordinary copy_pte_range does the rest.
  recover_pte_range takes src_ptl inside its loop over the VMAs that map
  the table below recover_end; when there is none (the pinned page is the
  lowest mapped address of the table) the loop never runs and the final
  spin_lock(src_ptl) takes an uninitialised lock.
* break (03/14, handle_cow_pte_fault): as the last user make the pmd
  writable; otherwise clear the pmd (no lock), allocate a table, copy the
  entries verbatim, drop the reference (reusing the old table if it became
  the last one meanwhile), flush the TLB range.
* faults break on FAULT_FLAG_WRITE/UNSHARE or on a VMA with vm_ops (a read
  fault on anon memory does not), and before do_swap_page (03/14).
* zap (03/14): a table the VMA does not cover whole is broken first; a
  shared one the VMA covers is only de-accounted (the entries stay) and
  free_pmd_range later drops the reference.
* mprotect, clear_refs (soft-dirty) and rmap walks break first; a failed
  break skips the table silently (09/14, 12/14, 04/14); __split_vma breaks
  at the split address (03/14); move_page_tables (mremap) breaks the old
  table before moving it, ignoring the result ("TLB flush twice time
  here?"), in the same patch as __split_vma's -- only the old one:
  move_ptes writes into the new table even when fork shared it (it maps
  other VMAs).
* the walkers' pmd_bad checks accept a write-protected table pmd (03/14,
  08/14, 09/14); pmd_none_or_clear_bad itself (fork's fall-through,
  free_pmd_range) does not.

Design notes the model follows: RSS and nr_ptes are not modelled; the split
ptlock of the shared table is the lock all sharers take; split_vma's break
cannot fail here (the model's munmap/mprotect do not handle a failing
split).
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import (EAGAIN, ENOMEM, FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, VM_DONTCOPY,
                         VM_FAULT_OOM)
from model.pgtable import Pmd, PtePointer, pmd_index, pmd_wrprotect, pte_index
from model.variants import register
from model.variants.cowpte.common import CowPteKernel


@register
class CowPteV4(CowPteKernel):
    name = "cowpte-v4"
    description = ("COW PTE v4: fork accounts pages in place then shares the table; breaks clone "
                   "it; walkers break first")
    patch = "<20230207035139.272707-1-shiyn.lin@gmail.com> (v6.2-rc7)"
    affected = "v4 series, not merged"
    #: several oracles fire (corpus/cowpte-v4/): the benchmark takes the first of any
    expected_oracle = "any"

    # -- pmd_bad relaxed for COW-ed tables (03/14, 08/14, 09/14) --------------------------
    def pte_offset_map(self, mm, addr: int):
        """The walkers' pmd_bad checks "if (!pmd_write(pmdval)) return 0" first (03/14)."""
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is not None and not pmd.write:
            if pmd.table.freed:
                return super().pte_offset_map(mm, addr)         # reports the use-after-free
            return PtePointer(pmd.table, pte_index(addr))
        return super().pte_offset_map(mm, addr)

    # -- fork (02/14) -------------------------------------------------------------------------
    async def copy_pmd_range(self, dst_vma, src_vma, addr: int, end: int) -> int:
        """mm/memory.c:copy_pmd_range (v6.2-rc7 + 02/14)."""
        src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
        dst_pmd = dst_mm.pmd[pmd_index(addr)]
        if dst_pmd is not None and not dst_pmd.write:
            return 0                          # Skip if the PTE already did COW PTE this time.
        ret, recover_end = await self.copy_cow_pte_range(dst_vma, src_vma, addr)
        if ret == 0:
            return 0
        if ret != -EAGAIN:
            return -ENOMEM
        if await self.recover_pte_range(dst_vma, src_vma, recover_end):
            return -ENOMEM
        if not (src_vma.vm_start <= recover_end < src_vma.vm_end):
            return 0
        # fall through: pmd_none_or_clear_bad(src_pmd) (not relaxed), copy_pte_range
        src_pmd = src_mm.pmd[pmd_index(addr)]
        if src_pmd is None:
            return 0
        if self.pmd_bad(src_pmd):
            self.pmd_clear_bad(src_mm, addr)
        return await self.copy_pte_range(dst_vma, src_vma, recover_end, end)

    async def copy_cow_pte_range(self, dst_vma, src_vma, addr: int):
        """mm/memory.c:copy_cow_pte_range (02/14): (0 | -EAGAIN | -ENOMEM, recover_end)."""
        sched = self.sched
        src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
        table = src_mm.pmd[pmd_index(addr)].table            # read without the lock
        start, end = self.table_range(addr)
        with self.cow_pte_operation():
            await table.ptl.lock(sched, "copy_cow_pte_range:spin_lock(src_ptl)")
            self.pmd_get_pte(table)                          # only at first attach
            await self.pmd_install(dst_mm, addr, table, "copy_cow_pte_range")
            table.ptl.unlock(sched)
            with self.in_place_accounting():
                for curr in self.vmas_in_table(src_mm, addr):
                    a = max(start, curr.vm_start)
                    vm_end = min(end, curr.vm_end)
                    if curr.vm_flags & VM_DONTCOPY:
                        return -EAGAIN, a                    # We don't share with VM_DONTCOPY.
                    await table.ptl.lock(sched, "copy_cow_pte_range:spin_lock(src_ptl)")
                    ret = 0
                    while a < vm_end:
                        await sched.point("copy_cow_pte_range:ptep_get")
                        p = PtePointer(table, pte_index(a))
                        pte = self.ptep_get(p)
                        if pte is not None and not pte.present:
                            self.copy_nonpresent_pte(dst_mm, src_mm, p, p, curr, curr, a)
                        elif pte is not None:
                            ret, _ = await self.copy_present_ptes(curr, curr, p, p, pte, a, None)
                            if ret == -EAGAIN:
                                break                        # maybe pinned: cannot share
                        a += 1
                    table.ptl.unlock(sched)
                    if ret == -EAGAIN:
                        return -EAGAIN, a
            # All the pte entries are available to COW mapping: share with the child.
            await sched.point("copy_cow_pte_range:pmdp_set_wrprotect")
            src_pmd = src_mm.pmd[pmd_index(addr)]
            self.set_pmd(src_mm, addr, pmd_wrprotect(src_pmd))
            self.set_pmd(dst_mm, addr, pmd_wrprotect(src_mm.pmd[pmd_index(addr)]))
        return 0, None

    async def recover_pte_range(self, dst_vma, src_vma, recover_end: int) -> int:
        """mm/memory.c:recover_pte_range (02/14): the child gets a private table with the
        entries already accounted, verbatim. src_ptl is set inside the loop over the VMAs
        that map the table below recover_end: with none, it is locked uninitialised."""
        sched = self.sched
        src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
        src_table = src_mm.pmd[pmd_index(recover_end)].table
        start, _ = self.table_range(recover_end)
        with self.cow_pte_operation():
            self.set_pmd(dst_mm, recover_end, None)          # mm_dec_nr_ptes; pmd_clear
            if await self.pte_alloc(dst_mm, recover_end, "recover_pte_range"):
                return -ENOMEM
            dst_table = dst_mm.pmd[pmd_index(recover_end)].table
            addr = start
            locked = False
            for curr in [v for v in src_mm.vmas if v.vm_start < recover_end and start < v.vm_end]:
                addr = max(addr, curr.vm_start)
                if addr >= recover_end:
                    raise KernelBug(f"recover_pte_range: the copy loop starts at the end ({addr}) "
                                    f"and runs past the page table", mm=dst_mm.mid, va=addr)
                await dst_table.ptl.lock(sched, "recover_pte_range:spin_lock(dst_ptl)")
                await src_table.ptl.lock(sched, "recover_pte_range:spin_lock(src_ptl)")
                locked = True
                while addr != recover_end:
                    pte = src_table.ptes[pte_index(addr)]
                    if pte is not None:
                        self.set_pte_at(dst_mm, addr, PtePointer(dst_table, pte_index(addr)), pte)
                    addr += 1
                src_table.ptl.unlock(sched)
                dst_table.ptl.unlock(sched)
            if not locked:
                raise KernelBug("recover_pte_range: spin_lock(src_ptl) of an uninitialised lock "
                                f"(no VMA of {src_mm.name} maps the table below recover_end "
                                f"{recover_end}, so the copy loop never set src_ptl)",
                                mm=dst_mm.mid, va=recover_end)
            # release the holding from child; the parent may still share with others
            await src_table.ptl.lock(sched, "recover_pte_range:spin_lock(src_ptl)")
            self.pmd_put_pte_unless_last(src_table)
            src_table.ptl.unlock(sched)
        return 0

    # -- breaking (03/14) ---------------------------------------------------------------------
    async def handle_cow_pte_fault(self, vma, addr: int) -> int:
        """mm/memory.c:handle_cow_pte_fault (03/14): 0 or -ENOMEM."""
        sched = self.sched
        mm = vma.vm_mm
        idx = pmd_index(addr)
        pmd = mm.pmd[idx]
        if pmd is None or pmd.write:
            return 0
        start, end = self.table_range(addr)
        with self.cow_pte_operation():
            self.mmap_assert_write_locked(mm)
            mm.write_protect_seq.raw_write_seqcount_begin(sched)
            ret = await self._break(vma, addr, start, end)
            mm.write_protect_seq.raw_write_seqcount_end(sched)
        return ret

    async def _break(self, vma, addr: int, start: int, end: int) -> int:
        sched = self.sched
        mm = vma.vm_mm
        idx = pmd_index(addr)
        old = mm.pmd[idx].table
        await old.ptl.lock(sched, "handle_cow_pte_fault:pte_offset_map_lock")
        # Fast path: the only user reuses it.
        if self.cow_pte_count(self._pmd(mm, addr)) == 1:
            self.pmd_mkwrite_at(mm, addr)
            old.ptl.unlock(sched)
            await self.flush_tlb_range(vma, start, end, "handle_cow_pte_fault:flush_tlb_range")
            return 0
        old.ptl.unlock(sched)                  # We don't hold the lock when allocating.
        await sched.point("handle_cow_pte_fault:pmd_clear")
        cowed = self._pmd(mm, addr)
        self.set_pmd(mm, addr, None)
        if await self.pte_alloc(mm, addr, "handle_cow_pte_fault"):
            self.set_pmd(mm, addr, cowed)      # If allocation failed, restore COW-ed PTE.
            return -ENOMEM
        new = self._pmd(mm, addr).table
        await new.ptl.lock(sched, "handle_cow_pte_fault:pte_alloc_map_lock")
        await cowed.table.ptl.lock(sched, "handle_cow_pte_fault:pte_offset_map_lock(cowed)")
        for a in range(start, end):
            pte = cowed.table.ptes[pte_index(a)]
            if pte is not None:
                self.set_pte_at(mm, a, PtePointer(new, pte_index(a)), pte)
        new.ptl.unlock(sched)
        if not self.pmd_put_pte_unless_last(cowed.table):
            # The old table's refcount is 1: free the new one, reuse the old one.
            for a in range(start, end):
                if new.ptes[pte_index(a)] is not None:
                    self.set_pte_at(mm, a, PtePointer(new, pte_index(a)), None)
            self.set_pmd(mm, addr, None)
            self.pte_free(new)                 # pte_free: immediately, no RCU / mmu_gather
            self.set_pmd(mm, addr, Pmd(cowed.table, True))
        cowed.table.ptl.unlock(sched)
        await self.flush_tlb_range(vma, start, end, "handle_cow_pte_fault:flush_tlb_range")
        return 0

    def _pmd(self, mm, addr: int):
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None:
            raise KernelBug(f"handle_cow_pte_fault: pmd of {mm.name} at va {addr} became none "
                            "under the break (pmd_page of a none pmd)", mm=mm.mid, va=addr)
        return pmd

    async def break_cow_pte(self, vma, addr: int) -> int:
        """mm/memory.c:break_cow_pte (03/14)."""
        return await self.handle_cow_pte_fault(vma, addr)

    # -- the hooks ------------------------------------------------------------------------------
    async def _handle_mm_fault(self, vma, address: int, flags: int) -> int:
        """mm/memory.c:__handle_mm_fault (v6.2-rc7 + 03/14)."""
        if flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) or vma.vm_file is not None:
            await self.sched.point("__handle_mm_fault:handle_cow_pte_fault")
            if await self.handle_cow_pte_fault(vma, address) == -ENOMEM:
                return VM_FAULT_OOM
        pmd = vma.vm_mm.pmd[pmd_index(address)]
        if pmd is not None and pmd.table.refcount > 1 and pmd.write:
            raise KernelBug(f"__handle_mm_fault: VM_WARN_ON(cow_pte_count(vmf.pmd) > 1 && "
                            f"pmd_write(*vmf.pmd)) ({pmd.table.name})",
                            mm=vma.vm_mm.mid, va=address, table=pmd.table.name)
        return await super()._handle_mm_fault(vma, address, flags)

    async def do_swap_page(self, vmf) -> int:
        """handle_pte_fault (v6.2-rc7 + 03/14): break before do_swap_page, result ignored."""
        await self.handle_cow_pte_fault(vmf.vma, vmf.address)
        return await super().do_swap_page(vmf)

    async def zap_pte_range_shared(self, tlb, vma, addr: int) -> bool:
        """mm/memory.c:zap_pte_range (v6.2-rc7 + 03/14): break a table the VMA does not
        cover whole; de-account only (pte_is_shared) a shared one it covers."""
        mm = tlb.mm
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None or pmd.write:
            return False
        start, end = self.table_range(addr)
        if not (vma.vm_start <= start and end <= vma.vm_end):
            await self.break_cow_pte(vma, addr)                 # result ignored
            return False
        table = pmd.table
        await table.ptl.lock(self.sched, "zap_pte_range:pte_offset_map_lock(cow)")
        shared = table.refcount != 1
        if not shared:
            self.pmd_mkwrite_at(mm, addr)                       # Reuse COW-ed PTE
        table.ptl.unlock(self.sched)
        return shared

    async def free_pmd_range(self, tlb, mm, addr: int) -> None:
        """mm/memory.c:free_pmd_range (v6.2-rc7 + 03/14)."""
        pmd = mm.pmd[pmd_index(addr)]
        if not pmd.write:
            table = pmd.table
            await table.ptl.lock(self.sched, "free_pmd_range:spin_lock(ptl)")
            if not self.pmd_put_pte_unless_last(table):
                self.pmd_mkwrite_at(mm, addr)
                table.ptl.unlock(self.sched)
                await super().free_pmd_range(tlb, mm, addr)
                return
            table.ptl.unlock(self.sched)
            self.set_pmd(mm, addr, None)                        # pmd_clear; tlb_flush_pmd_range
            return
        if pmd.table.refcount != 1:
            raise KernelBug(f"free_pmd_range: VM_WARN_ON(cow_pte_count(pmd) != 1) "
                            f"({pmd.table.name})", mm=mm.mid, va=addr, table=pmd.table.name)
        await super().free_pmd_range(tlb, mm, addr)

    async def walk_pmd(self, walker: str, vma, addr: int) -> bool:
        """change_pte_range (09/14), clear_refs_pte_range soft-dirty (12/14),
        page_vma_mapped_walk with PVMW_BREAK_COW_PTE (04/14) and move_page_tables: break
        first; if that fails, skip the table (mprotect and clear_refs report success
        regardless; mremap moves it anyway)."""
        return not await self.break_cow_pte(vma, addr)

    async def split_vma(self, mm, vma, addr: int):
        """mm/mmap.c:__split_vma (v6.2-rc7 + 03/14): break the table at the split address."""
        await self.break_cow_pte(vma, addr)
        return await super().split_vma(mm, vma, addr)
