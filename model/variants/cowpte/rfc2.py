"""COW PTE, RFC v2: lazy accounting, a table owner, COW_PTE_OWNER_EXCLUSIVE set by GUP.

"[RFC PATCH v2 0/9] Introduce Copy-On-Write to Page Table", Chih-En Lin,
28 Sep 2022, <20220927162957.270460-1-shiyn.lin@gmail.com>, on v6.0-rc5.
Each method below names the patch it follows (N/9 is Message-Id
<20220927162957.270460-(N+1)-shiyn.lin@gmail.com>).

* fork (9/9) shares a table by write-protecting the parent's pmd, taking a
  table reference and pointing the child's pmd at it; the PTEs are left as
  they are (writable ones stay writable, PageAnonExclusive stays set,
  mapcounts and swap counts are not raised). The first sharer's pmd slot
  becomes the table's owner (3/9).
* any fault under a COW-ed pmd breaks it (9/9, 7/9): with other users, the
  ordinary copy_pte_range copies the table for this mm, doing the
  accounting fork skipped; as the last user, the pmd is made writable
  again (cow_pte_fallback, 4/9). No TLB flush.
* zap, and reclaim's rmap walk, drop this mm's reference to a COW-ed table
  (zap_cow_pte, 7/9, 8/9): the pmd is cleared, the entries stay for the
  other sharers.
* GUP marks the table COW_PTE_OWNER_EXCLUSIVE (6/9), so fork copies it
  instead of sharing it: slow GUP under the ptl at follow_page_pte's out:,
  GUP-fast after its lockless walk. Neither GUP path checks whether the
  table is shared right now; GUP-fast looks at the PTE only, which fork
  left writable.
* not hooked: mprotect, clear_refs, mremap (and madvise other than
  DONTNEED): they find the write-protected pmd "bad" (x86) and clear it
  (mremap's whole-table move carries the table over to a writable pmd).

Design notes the model follows: RSS and nr_ptes counters are not modelled
(the owner logic that maintains them is kept, for the owner states);
split_vma's break cannot fail here (the model's munmap/mprotect do not
handle a failing split); the table checks leave out "no_writable_pte" and
"no_exclusive_anon", which this design does not promise (lazy accounting
keeps both by design; what they lead to is what the end-to-end oracles
judge), and mapcounts count a shared table once.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import ENOMEM, FOLL_WRITE, VM_FAULT_OOM, is_cow_mapping
from model.gup import can_follow_write_pte
from model.pgtable import Pmd, pmd_index, pmd_wrprotect
from model.variants import register
from model.variants.cowpte.common import CowPteKernel

#: pgtable.h (6/9): "this table must never be shared"
COW_PTE_OWNER_EXCLUSIVE = "EXCLUSIVE"


@register
class CowPteRfc2(CowPteKernel):
    name = "cowpte-rfc2"
    description = ("COW PTE RFC v2: fork shares tables without per-page accounting; GUP "
                   "marks tables COW_PTE_OWNER_EXCLUSIVE")
    patch = "<20220927162957.270460-1-shiyn.lin@gmail.com> (v6.0-rc5)"
    affected = "RFC series, not merged"
    table_checks = ("refcount", "pmd_ro", "no_modify")
    #: several oracles fire (corpus/cowpte-rfc2/): the benchmark takes the first of any
    expected_oracle = "any"
    mapcount_counts_sharers = False

    # -- owner and exclusive flag (3/9, 6/9) --------------------------------------------
    def set_cow_pte_owner(self, table, owner) -> None:
        """pgtable.h:set_cow_pte_owner (3/9): smp_store_release of the owner pmd slot."""
        self.sched.log(table, "cow_pte_owner", table.cow_pte_owner, owner)
        table.cow_pte_owner = owner

    def is_pte_table_cowing(self, pmd) -> bool:
        """pgtable.h:__is_pte_table_cowing (7/9): a write-protected pmd, not exclusive."""
        return (pmd is not None and not pmd.write
                and pmd.table.cow_pte_owner != COW_PTE_OWNER_EXCLUSIVE)

    def _live_pmd(self, mm, addr: int, where: str):
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None:
            raise KernelBug(f"{where}: pmd of {mm.name} at va {addr} is none (pmd_page of a none "
                            "pmd)", mm=mm.mid, va=addr)
        return pmd

    # -- fork (9/9) -------------------------------------------------------------------------
    async def copy_pmd_range(self, dst_vma, src_vma, addr: int, end: int) -> int:
        """mm/memory.c:copy_pmd_range (v6.0-rc5 + 9/9): share the table unless exclusive."""
        sched = self.sched
        src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
        idx = pmd_index(addr)
        await sched.point("copy_pmd_range:is_cow_pte_available")
        src_pmd = self._live_pmd(src_mm, addr, "copy_pmd_range")
        if src_pmd.table.cow_pte_owner == COW_PTE_OWNER_EXCLUSIVE:
            return await self.copy_pte_range(dst_vma, src_vma, addr, end)
        dst_pmd = dst_mm.pmd[idx]
        if dst_pmd is not None and not dst_pmd.write:
            return 0                                    # Skip if the PTE already COW this time.
        with self.cow_pte_operation():
            table = src_pmd.table
            if table.cow_pte_owner is None:
                # If PTE doesn't have an owner, the parent needs to take this PTE.
                self.set_cow_pte_owner(table, (src_mm.mid, idx))
                if not src_pmd.write:
                    self.set_pmd(src_mm, addr, Pmd(table, True))   # pmd_populate (+ rss)
            await sched.point("copy_pmd_range:pmdp_set_wrprotect")
            self.set_pmd(src_mm, addr,
                         pmd_wrprotect(self._live_pmd(src_mm, addr, "pmdp_set_wrprotect")))
            await sched.point("copy_pmd_range:pmd_get_pte")
            self.pmd_get_pte(self._live_pmd(src_mm, addr, "pmd_get_pte").table)
            await sched.point("copy_pmd_range:set_pmd_at")
            self.set_pmd(dst_mm, addr, self._live_pmd(src_mm, addr, "set_pmd_at"))
        return 0

    # -- breaking (4/9, 7/9) ------------------------------------------------------------------
    async def handle_cow_pte(self, vma, addr: int, alloc: bool) -> int:
        """mm/memory.c:handle_cow_pte (7/9): 1 reused, 0 copied or dropped, -ENOMEM."""
        if not self.is_pte_table_cowing(vma.vm_mm.pmd[pmd_index(addr)]):
            return 0
        with self.cow_pte_operation():
            if alloc:
                return await self.break_cow_pte(vma, addr)
            return await self.zap_cow_pte(vma, addr)

    async def cow_pte_fallback(self, vma, addr: int) -> None:
        """mm/memory.c:cow_pte_fallback (4/9, 5/9): the last user reuses the table."""
        mm = vma.vm_mm
        idx = pmd_index(addr)
        pmd = self._live_pmd(mm, addr, "cow_pte_fallback")
        if pmd.write:
            raise KernelBug(f"cow_pte_fallback: VM_WARN_ON(pmd_write(*pmd)) ({mm.name}, va {addr})",
                            mm=mm.mid, va=addr, table=pmd.table.name)
        if pmd.table.refcount != 1:
            raise KernelBug(f"cow_pte_fallback: VM_WARN_ON(cow_pte_count(pmd) != 1): "
                            f"{pmd.table.name} has {pmd.table.refcount} users",
                            mm=mm.mid, va=addr, table=pmd.table.name)
        if pmd.table.cow_pte_owner != (mm.mid, idx):
            self.set_pmd(mm, addr, Pmd(pmd.table, True))    # rss + nr_ptes; pmd_populate
        self.set_cow_pte_owner(pmd.table, None)              # Reuse the pte page
        self.pmd_mkwrite_at(mm, addr)

    async def copy_cow_pte_range(self, vma, start: int, end: int, cowed) -> int:
        """mm/memory.c:copy_cow_pte_range (7/9): the ordinary copy_pte_range from the shared
        table into this mm's new one, inside write_protect_seq."""
        mm = vma.vm_mm
        is_cow = is_cow_mapping(vma.vm_flags)
        if is_cow:
            self.mmap_assert_write_locked(mm)
            mm.write_protect_seq.raw_write_seqcount_begin(self.sched)
        ret = await self.copy_pte_range(vma, vma, start, end, src_pmd=cowed)
        if is_cow:
            mm.write_protect_seq.raw_write_seqcount_end(self.sched)
        return ret

    async def break_cow_pte(self, vma, addr: int) -> int:
        """mm/memory.c:break_cow_pte (7/9): copy the shared table for this mm."""
        mm = vma.vm_mm
        idx = pmd_index(addr)
        await self.sched.point("break_cow_pte:cow_pte_count")
        cowed = self._live_pmd(mm, addr, "break_cow_pte")          # pmd_t cowed_entry = *pmd
        if cowed.table.refcount == 1:
            await self.cow_pte_fallback(vma, addr)
            return 1
        start, end = self.table_range(addr)
        await self.sched.point("break_cow_pte:pmd_clear")
        self.set_pmd(mm, addr, None)
        i = mm.vmas.index(vma)
        prev = mm.vmas[i - 1] if i > 0 else None
        nxt = mm.vmas[i + 1] if i + 1 < len(mm.vmas) else None
        if start < vma.vm_start and prev is not None:
            if start < prev.vm_end:
                await self.copy_cow_pte_range(prev, start, prev.vm_end, cowed)   # unchecked
            start = vma.vm_start
        if end > vma.vm_end and nxt is not None:
            if end > nxt.vm_start:
                await self.copy_cow_pte_range(nxt, nxt.vm_start, end, cowed)      # unchecked
            end = vma.vm_end
        if await self.copy_cow_pte_range(vma, start, end, cowed):
            return -ENOMEM
        if cowed.table.cow_pte_owner == (mm.mid, idx):
            self.set_cow_pte_owner(cowed.table, None)        # (rss and nr_ptes given back)
        # Already handled it, don't reuse cowed table.
        self.pmd_put_pte_unless_last(cowed.table)
        pmd = self._live_pmd(mm, addr, "break_cow_pte")
        if pmd.table.refcount != 1:
            raise KernelBug(f"break_cow_pte: VM_BUG_ON(cow_pte_count(pmd) != 1): "
                            f"{pmd.table.name} has {pmd.table.refcount} users",
                            mm=mm.mid, va=addr, table=pmd.table.name)
        return 0

    async def zap_cow_pte(self, vma, addr: int) -> int:
        """mm/memory.c:zap_cow_pte (7/9): this mm drops its reference to the whole table."""
        mm = vma.vm_mm
        idx = pmd_index(addr)
        await self.sched.point("zap_cow_pte:pmd_put_pte")
        pmd = self._live_pmd(mm, addr, "zap_cow_pte")
        if not self.pmd_put_pte_unless_last(pmd.table):
            await self.cow_pte_fallback(vma, addr)       # pmd_put_pte(..., reuse=true)
            return 1
        if pmd.table.cow_pte_owner == (mm.mid, idx):
            self.set_cow_pte_owner(pmd.table, None)       # (rss and nr_ptes given back)
        await self.sched.point("zap_cow_pte:pmd_clear")
        self.set_pmd(mm, addr, None)
        return 0

    # -- the hooks (7/9, 8/9, 9/9) ----------------------------------------------------------
    async def _handle_mm_fault(self, vma, address: int, flags: int) -> int:
        """mm/memory.c:__handle_mm_fault (v6.0-rc5 + 9/9): every fault under a COW-ed pmd
        breaks it; it copies when the table had other users at fault entry."""
        await self.sched.point("__handle_mm_fault:handle_cow_pte")
        orig = vma.vm_mm.pmd[pmd_index(address)]                  # vmf.orig_pmd
        if orig is not None:
            if await self.handle_cow_pte(vma, address, self.cow_pte_count(orig) > 1) < 0:
                return VM_FAULT_OOM
        return await super()._handle_mm_fault(vma, address, flags)

    async def zap_pmd_range(self, tlb, vma, addr: int, end: int, reclaim_pt: bool = False) -> None:
        """mm/memory.c:zap_pmd_range (v6.0-rc5 + 9/9): drop a COW-ed table, then zap."""
        if self.is_pte_table_cowing(tlb.mm.pmd[pmd_index(addr)]):
            await self.handle_cow_pte(vma, addr, False)
        await super().zap_pmd_range(tlb, vma, addr, end, reclaim_pt)

    async def free_pmd_range(self, tlb, mm, addr: int) -> None:
        """mm/memory.c:free_pmd_range (v6.0-rc5 + 9/9): pmd_none_or_clear_bad, then the
        series' assertions that the table is private."""
        pmd = mm.pmd[pmd_index(addr)]
        if self.pmd_bad(pmd):
            self.pmd_clear_bad(mm, addr)
        if pmd.table.refcount != 1:
            raise KernelBug(f"free_pmd_range: VM_BUG_ON(cow_pte_count(pmd) != 1): "
                            f"{pmd.table.name} has {pmd.table.refcount} users",
                            mm=mm.mid, va=addr, table=pmd.table.name)
        if pmd.table.cow_pte_owner not in (None, COW_PTE_OWNER_EXCLUSIVE):
            raise KernelBug(f"free_pmd_range: VM_BUG_ON(!cow_pte_owner_is_same(pmd, NULL)): "
                            f"{pmd.table.name} owned by {pmd.table.cow_pte_owner}",
                            mm=mm.mid, va=addr, table=pmd.table.name)
        await super().free_pmd_range(tlb, mm, addr)

    async def walk_pmd(self, walker: str, vma, addr: int) -> bool:
        """try_to_unmap_one walks with PVMW_COW_PTE (8/9): page_vma_mapped_walk drops a
        COW-ed table (zap_cow_pte), then map_pte()s the pmd -- which it may just have
        cleared. mprotect and clear_refs are not hooked."""
        if walker == "rmap":
            mm = vma.vm_mm
            await self.handle_cow_pte(vma, addr, False)
            if mm.pmd[pmd_index(addr)] is None:
                raise KernelBug(f"page_vma_mapped_walk: map_pte() on the pmd of {mm.name} at va "
                                f"{addr} that zap_cow_pte() just cleared", mm=mm.mid, va=addr)
        return True

    async def split_vma(self, mm, vma, addr: int):
        """mm/mmap.c:__split_vma (v6.0-rc5 + 9/9): break the table at the split address."""
        if mm.pmd[pmd_index(addr)] is not None:
            await self.handle_cow_pte(vma, addr, True)
        return await super().split_vma(mm, vma, addr)

    # -- GUP (6/9) ----------------------------------------------------------------------------
    async def follow_page_pte(self, vma, address: int, flags: int):
        """mm/gup.c:follow_page_pte (v6.0-rc5 + 6/9): a bad (write-protected) pmd means no
        page table; any lookup that found a present PTE marks the table exclusive."""
        mm = vma.vm_mm
        pmd = self.pmdp_get(mm, address)
        if pmd is None or self.pmd_bad(pmd):
            return None                                   # no_page_table
        ptep = await self.pte_offset_map_lock(mm, address, "follow_page_pte:pte_offset_map_lock",
                                              readonly=True)
        if ptep is None:
            return None
        pte = self.ptep_get(ptep)
        if pte is None or not pte.present:
            self.pte_unmap_unlock(ptep)
            return None                                   # no_page
        folio = self.vm_normal_page(vma, address, pte)
        if (flags & FOLL_WRITE) and not can_follow_write_pte(pte, folio, vma, flags):
            page = None
        else:
            page = self.follow_page_grab(vma, address, ptep, pte,
                                         folio if folio is not None else self.zero_folio, flags)
        # out: We don't share the PTE when any other pinned page exists.
        self.set_cow_pte_owner(ptep.table, COW_PTE_OWNER_EXCLUSIVE)
        self.pte_unmap_unlock(ptep)
        return page

    async def gup_fast_pmd_range(self, mm, addr: int, flags: int):
        """mm/gup.c:gup_pmd_range (v6.0-rc5 + 6/9): after a successful lockless walk, mark
        the table (of the pmd value read) exclusive; no lock, no check of the pmd."""
        await self.sched.point("gup_fast_pte_range:ptep_get_lockless")
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None:
            return None
        folio = await self.gup_fast_pte_range(mm, addr, pmd, flags)
        if folio is not None:
            await self.sched.point("gup_pmd_range:pmd_cow_pte_mkexclusive")
            self.set_cow_pte_owner(pmd.table, COW_PTE_OWNER_EXCLUSIVE)
        return folio
