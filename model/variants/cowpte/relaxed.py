"""COW PTE, the relaxed form David Hildenbrand proposed in the RFC v2 thread.

The thread (28-29 Sep 2022), and which choice follows which message:

* <c12f848d-cb54-2998-8650-2c2a5707932d@redhat.com>: "During fork(), we'd
  do exactly what we used to do to PTEs (increment mapcount, refcount,
  trying to clear PageAnonExclusive, map the page R/O, duplicate swap
  entries; all while holding the page table lock), however, sharing the
  prepared page table with the child process using COW after we prepared
  it." So fork (copy_cow_pte_range) takes the parent table's ptl once and,
  for every VMA of the table, does the ordinary per-PTE fork work in place
  (copy_present_ptes / copy_nonpresent_pte with the parent's entry as both
  source and destination, as v4 does), except that the parent's entry is
  changed where it lies, as upstream fork changes it (ptep_set_wrprotect),
  never by writing back the value read before: v4's set_pte_at of that value
  drops a Dirty bit a store set meanwhile through the still-writable entry
  (corpus/cowpte-v4/in-place-prepare-drops-the-dirty-bit.cow; campaigns found
  it here when this design still did as v4, corpus/cowpte-relaxed/); then --
  still under the ptl --
  write-protects the parent's pmd (pmdp_set_wrprotect), takes a table
  reference (pmd_get_pte) and points the child's pmd at the table,
  read-only (set_pmd_at), each pmd under its pmd lock.
* <834c258d-4c0e-1753-3608-8a7e28c14d07@redhat.com> (quoted in
  <YzXqpN5bnG9HSGyI@strix-laptop>): "Handle pinned anon pages just as I
  described below, falling back to the 'slow' path of page table copying",
  and, earlier in the same exchange, "when we cannot share an anon page
  with the child process because it maybe pinned -- and we have to copy
  it via copy_present_page() [...] we'd not be able to share the page
  table". A maybe-pinned anon page (folio_try_dup_anon_rmap_pte fails, as
  in copy_present_ptes) or a VMA the child does not get (VM_DONTCOPY)
  stops the preparation, and so does one it gets empty (VM_WIPEONFORK: the
  thread does not discuss it; sharing the table would hand the child the
  parent's pages). Chih-En Lin's answer in the same exchange names
  the cost: "it needs to duplicate the whole table and roll back (recover
  the state and copy it to new table)"; David: "Having pinned pages is a
  corner case [...] No need to worry about optimizing this corner case".
  So recover_pte_range rolls back, still under the ptl, every entry
  already prepared (mapcount and reference dropped, PageAnonExclusive set
  again where it was, the swap count dropped, the original entry written
  back), and the ordinary copy_pte_range copies the table -- unlike v4's
  recover_pte_range, which keeps the prepared entries and copies them.
  Fork decides once per table: later VMAs of a table it shared skip it
  (the record is dup_mmap's own, so a table broken meanwhile stays
  decided); after a fallback they copy their part as upstream does.
* <c12f848d-...>: "Any [...] modification attempts require breaking COW --
  copying the page table for the faulting process." break_cow_pte: under
  the shared table's ptl, re-check that the pmd still points at it; as the
  last user make the pmd writable; otherwise copy the entries into a table
  allocated beforehand (it cannot fail for a fault: __GFP_NOFAIL, the OOM
  killer handles exhaustion, so no caller fails halfway), replace the pmd
  under the pmd lock (never through pmd_none), and flush this mm's TLB for
  the table -- paging-structure caches included (flush_tlb_range, which
  passes freed_tables) -- before dropping the table reference: once the
  reference is gone the last sharer may reuse the table and change it in
  place, and a CPU of this mm still walking it would see that ("devil is
  in the detail (page table lock, TLB flushing)", <c12f848d-...>). The new
  table's ptl is held from before the pmd points at it until that flush:
  until then a CPU of this mm may still walk the old table through a
  cached pmd, so a thread of the mm that changed the new table meanwhile
  (MADV_DONTNEED's zap, whose leaf-only flush keeps walk caches) would not
  be seen by it (corpus/cowpte-relaxed/break-holds-the-new-table-until-
  the-flush.cow; a bench run found it when the breaker dropped the lock at
  set_pmd). Unsharing hugetlb's shared PMD tables has the same hazard:
  c2ff4764e03e ("arm64: tlb: Flush walk cache when unsharing PMD tables",
  2026; in 7.0.y) makes arm64's flush drop the walk cache for it.
* mremap breaks a shared table before moving it: move_ptes locks it to
  change it, and a whole-table move (move_normal_pmd) breaks it first
  (walk_pmd "mremap"), as v4 breaks it in move_page_tables; the table the
  entries move into is broken too (pte_offset_map_rw_nolock), which v4 does
  not do.
* nothing modifies a shared table in place: every fault under a
  write-protected table pmd breaks first, and every path that locks a
  table to change it (pte_offset_map_lock) breaks a shared one first;
  readers (GUP's follow_page_pte) may read a shared table.
* reclaim: the rmap walk (try_to_unmap_one) holds no mmap_lock of the mm
  it visits. "Any (most once we want to *optimize* rmap handling)
  modification attempts require breaking COW" (<c12f848d-...>): this
  design breaks the table from the rmap walk too, under the ptl and pmd
  lock, as khugepaged's retract_page_tables changes other mms' pmds from an
  i_mmap walk (1d65b771bc08, v6.6). The table comes from a non-blocking
  allocation there (reclaim runs because memory is short): if it fails
  the page stays mapped, as a pinned one does. The other choice the thread
  leaves open is cowpte-relaxed-shared-unmap.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import EAGAIN, VM_DONTCOPY, VM_WIPEONFORK, is_cow_mapping
from model.pgtable import (Pmd, PtePointer, pmd_index, pmd_wrprotect, pte_index, pte_mkdirty,
                           pte_mkold, pte_wrprotect)
from model.variants import register
from model.variants.cowpte.common import CowPteKernel


@register
class CowPteRelaxed(CowPteKernel):
    name = "cowpte-relaxed"
    description = ("COW PTE, relaxed (D. Hildenbrand): fork prepares the table in place and "
                   "shares it; break on every modification, from the rmap walk too")
    patch = "<c12f848d-cb54-2998-8650-2c2a5707932d@redhat.com> (proposal, on v6.0)"
    affected = "proposal, not implemented upstream"

    def __init__(self, sched):
        super().__init__(sched)
        #: dup_mmap's record of the tables this fork shared: child mm id -> pmd indexes
        self.cow_pte_shared_in_fork: dict[int, set[int]] = {}

    def pte_offset_map(self, mm, addr: int):
        """Read-only walkers may read a shared table: its write-protected pmd is not bad."""
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is not None and not pmd.write and not pmd.table.freed:
            return PtePointer(pmd.table, pte_index(addr))
        return super().pte_offset_map(mm, addr)

    # -- fork -----------------------------------------------------------------------------------
    async def copy_pmd_range(self, dst_vma, src_vma, addr: int, end: int) -> int:
        """mm/memory.c:copy_pmd_range (v6.0 + the proposal): the first VMA of a table shares
        it (or falls back to copying); later VMAs skip a table this fork shared and copy
        their part of one it did not."""
        dst_mm = dst_vma.vm_mm
        idx = pmd_index(addr)
        await self.sched.point("copy_pmd_range:pmd_none(dst_pmd)")
        if dst_mm.pmd[idx] is not None:
            if self.cow_pte_shared_by_this_fork(dst_mm, idx):
                return 0
            return await self.copy_pte_range(dst_vma, src_vma, addr, end)
        if await self.copy_cow_pte_range(dst_vma, src_vma, addr) != -EAGAIN:
            return 0
        return await self.copy_pte_range(dst_vma, src_vma, addr, end)

    def cow_pte_shared_by_this_fork(self, dst_mm, idx: int) -> bool:
        """Whether this fork shared the child's table at pmd ``idx`` (dup_mmap's record: the
        child's pmd may have been broken since, by the rmap walk)."""
        return idx in self.cow_pte_shared_in_fork.get(dst_mm.mid, ())

    async def copy_cow_pte_range(self, dst_vma, src_vma, addr: int) -> int:
        """copy_cow_pte_range (the name of v4 02/14): prepare the parent's table in place
        under its ptl and share it: 0, or -EAGAIN after rolling the preparation back (the
        caller copies the table instead)."""
        sched = self.sched
        src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
        start, end = self.table_range(addr)
        with self.cow_pte_operation():
            while True:
                src_pmd = src_mm.pmd[pmd_index(addr)]
                table = src_pmd.table
                await table.ptl.lock(sched, "copy_cow_pte_range:spin_lock(src_ptl)")
                if src_mm.pmd[pmd_index(addr)] == src_pmd:
                    break
                table.ptl.unlock(sched)               # the rmap walk broke it meanwhile
            seq = src_mm.write_protect_seq
            own_seq = not seq.sequence & 1            # a non-COW first VMA did not begin it
            if own_seq:
                seq.raw_write_seqcount_begin(sched)
            with self.in_place_accounting():
                done, shareable = await self.cow_pte_prepare(table, src_mm, start, end)
                if shareable:
                    await self.share_prepared_table(src_mm, dst_mm, addr)
                else:
                    await self.recover_pte_range(table, done)
            if own_seq:
                seq.raw_write_seqcount_end(sched)
            table.ptl.unlock(sched)
        return 0 if shareable else -EAGAIN

    async def cow_pte_prepare(self, table, src_mm, start: int, end: int):
        """The per-PTE fork work, in place, on every entry of every VMA of the table:
        (the prepared entries, whether all of them could be)."""
        sched = self.sched
        done = []
        for curr in self.vmas_in_table(src_mm, start):
            if curr.vm_flags & (VM_DONTCOPY | VM_WIPEONFORK):
                return done, False                 # the child will not have these pages
            for a in range(max(start, curr.vm_start), min(end, curr.vm_end)):
                await sched.point("copy_cow_pte_range:ptep_get")
                p = PtePointer(table, pte_index(a))
                pte = self.ptep_get(p)
                if pte is None:
                    continue
                if not pte.present:
                    self.copy_nonpresent_pte(src_mm, src_mm, p, p, curr, curr, a)
                    done.append((curr, a, pte, False))
                    continue
                exclusive = pte.folio.anon_exclusive
                ret, _ = await self.copy_present_ptes(curr, curr, p, p, pte, a, None)
                if ret == -EAGAIN:
                    return done, False             # maybe pinned: copy_present_page needed
                done.append((curr, a, pte, exclusive))
        return done, True

    async def recover_pte_range(self, table, done) -> None:
        """recover_pte_range (Chih-En Lin's "recover the state"; v4 02/14 keeps the state
        instead): roll the in-place preparation back, newest entry first, under the same
        ptl: the child's mapcount and reference (or swap count) go, PageAnonExclusive
        comes back where it was, and the parent's original entry is written back."""
        for curr, a, orig, exclusive in reversed(done):
            await self.sched.point("recover_pte_range:restore_pte")
            self.cow_pte_unprepare(curr, PtePointer(table, pte_index(a)), a, orig, exclusive)

    def cow_pte_unprepare(self, vma, ptep, addr: int, orig, exclusive: bool) -> None:
        """Undo copy_present_ptes / copy_nonpresent_pte done in place on one entry."""
        if orig.present:
            folio = self.vm_normal_page(vma, addr, orig)
            if folio is not None:
                self.folio_remove_rmap_pte(folio, vma)
                if exclusive:
                    self.SetPageAnonExclusive(folio)
                self.folio_put(folio)
        else:
            self.swap_put_entries_direct(orig.swp)
        live = self.ptep_get(ptep)
        if orig.present and live.dirty:
            orig = pte_mkdirty(orig)               # a store dirtied it after it was read
        if live != orig:
            self.set_pte_at(vma.vm_mm, addr, ptep, orig)

    def _copy_present_ptes(self, dst_vma, src_vma, dst_p, src_p, pte, addr: int) -> None:
        """mm/memory.c:__copy_present_ptes (v7.0); in place (fork preparing the table it
        shares), the parent's live entry is write-protected and made old where it lies
        (ptep_set_wrprotect, ptep_test_and_clear_young: atomic, so a Dirty bit the
        hardware set after ``pte`` was read stays), and a shared mapping's entry is not
        made clean: it is the parent's own."""
        if dst_p.table is not src_p.table or dst_p.idx != src_p.idx:
            super()._copy_present_ptes(dst_vma, src_vma, dst_p, src_p, pte, addr)
            return
        live = self.ptep_get(src_p)
        new = live
        if is_cow_mapping(src_vma.vm_flags) and live.write:
            new = pte_wrprotect(new)
        new = pte_mkold(new)
        if new != live:
            self.set_pte_at(src_vma.vm_mm, addr, src_p, new)

    async def share_prepared_table(self, src_mm, dst_mm, addr: int) -> None:
        """The end of copy_cow_pte_range (v4 02/14: pmdp_set_wrprotect, pmd_get_pte,
        set_pmd_at), under the table's ptl and each pmd lock: write-protect the parent's
        pmd, take the child's table reference and point the child's pmd at the table,
        read-only."""
        sched = self.sched
        idx = pmd_index(addr)
        table = src_mm.pmd[idx].table
        await src_mm.page_table_lock.lock(sched, "copy_cow_pte_range:pmd_lock(src)")
        self.set_pmd(src_mm, addr, pmd_wrprotect(src_mm.pmd[idx]))       # pmdp_set_wrprotect
        src_mm.page_table_lock.unlock(sched)
        self.pmd_get_pte(table)
        await dst_mm.page_table_lock.lock(sched, "copy_cow_pte_range:pmd_lock(dst)")
        self.set_pmd(dst_mm, addr, Pmd(table, False))                     # set_pmd_at
        dst_mm.page_table_lock.unlock(sched)
        self.cow_pte_shared_in_fork.setdefault(dst_mm.mid, set()).add(idx)

    # -- breaking ---------------------------------------------------------------------------
    async def break_cow_pte(self, mm, addr: int, nofail: bool = True) -> bool:
        """break_cow_pte (the name of v4 03/14): give ``mm`` a private copy of the shared
        table at ``addr``. False only when the allocation fails (``nofail`` off): the
        table is still shared."""
        sched = self.sched
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None or pmd.write:
            return True
        start, end = self.table_range(addr)
        with self.cow_pte_operation():
            new = self.pte_alloc_one("break_cow_pte:pte_alloc_one", nofail=nofail)
            if new is None:
                return False
            old = pmd.table
            await old.ptl.lock(sched, "break_cow_pte:spin_lock(ptl)")
            cur = mm.pmd[pmd_index(addr)]
            if cur is None or cur.table is not old or cur.write:
                old.ptl.unlock(sched)              # another thread of this mm broke it
                self.pte_free(new)
                return True
            await mm.page_table_lock.lock(sched, "break_cow_pte:pmd_lock")
            if old.refcount == 1:
                self.pmd_mkwrite_at(mm, addr)      # the last user keeps the table
                mm.page_table_lock.unlock(sched)
                old.ptl.unlock(sched)
                self.pte_free(new)
                return True
            for a in range(start, end):
                pte = old.ptes[pte_index(a)]
                if pte is not None:
                    self.set_pte_at(mm, a, PtePointer(new, pte_index(a)), pte)
            if not new.ptl.trylock(sched):         # spin_lock_nested: nobody sees it yet
                raise KernelBug(f"break_cow_pte: {new.name} locked before it was installed")
            self.set_pmd(mm, addr, Pmd(new, True))
            mm.page_table_lock.unlock(sched)
            await self.cow_pte_flush_replaced(mm, start, end)
            new.ptl.unlock(sched)
            self.pmd_put_pte_unless_last(old)
            old.ptl.unlock(sched)
        return True

    async def cow_pte_flush_replaced(self, mm, start: int, end: int) -> None:
        """flush_tlb_range over the table: no CPU of ``mm`` may walk the old table once
        its reference is dropped."""
        await self.flush_tlb_mm_range(mm, start, end, True, "break_cow_pte:flush_tlb_range")

    async def walk_pmd(self, walker: str, vma, addr: int) -> bool:
        """mremap moves the old pmd (move_normal_pmd populates the new one writable): a
        shared table is broken first. The other walkers lock the table, which breaks it
        (pte_offset_map_lock below)."""
        if walker == "mremap":
            await self.break_cow_pte(vma.vm_mm, addr)
        return True

    # -- nothing modifies a shared table in place ------------------------------------------
    async def pte_offset_map_lock(self, mm, addr: int, label: str, readonly: bool = False):
        """Every path that locks a table to change it breaks a shared one first; readers
        (follow_page_pte) lock the shared table itself. A walker without the mm's
        mmap_lock (reclaim's rmap walk) goes through cow_pte_rmap_shared."""
        while True:
            pmd = mm.pmd[pmd_index(addr)]
            if not readonly and pmd is not None and not pmd.write:
                if self._holds_mmap_lock(mm):
                    await self.break_cow_pte(mm, addr)
                elif not await self.cow_pte_rmap_shared(mm, addr):
                    return None
            ptep = await super().pte_offset_map_lock(mm, addr, label, readonly)
            pmd = mm.pmd[pmd_index(addr)]
            if ptep is None or readonly or pmd.write:
                return ptep
            self.pte_unmap_unlock(ptep)            # fork shared it while we waited

    async def pte_offset_map_rw_nolock(self, mm, addr: int):
        """The table a caller will lock and change itself (move_ptes' destination, which
        other VMAs of the table, forked, may share): broken first, as for
        pte_offset_map_lock."""
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is not None and not pmd.write and self._holds_mmap_lock(mm):
            await self.break_cow_pte(mm, addr)
        return await super().pte_offset_map_rw_nolock(mm, addr)

    async def cow_pte_rmap_shared(self, mm, addr: int) -> bool:
        """The rmap walk meets a shared table of ``mm``: break it (a non-blocking
        allocation). False leaves the page mapped."""
        await self.sched.point("try_to_unmap_one:break_cow_pte")
        return await self.break_cow_pte(mm, addr, nofail=False)

    def _holds_mmap_lock(self, mm) -> bool:
        cur = self.sched.current
        return mm.mmap_lock.writer is cur or cur in mm.mmap_lock.readers

    async def _handle_mm_fault(self, vma, address: int, flags: int) -> int:
        """__handle_mm_fault: a fault under a write-protected table pmd breaks it first
        (handle_pte_fault locks the table it read the PTE from directly)."""
        await self.sched.point("__handle_mm_fault:break_cow_pte")
        await self.break_cow_pte(vma.vm_mm, address)
        return await super()._handle_mm_fault(vma, address, flags)

