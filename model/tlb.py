"""Per-CPU TLBs and paging-structure caches, TLB flushes and the mmu_gather.

Mirrors arch/x86/mm/tlb.c (flush_tlb_mm_range, IPI-based: a flush returns
only once every CPU running the mm dropped the translations) and
include/asm-generic/tlb.h + mm/mmu_gather.c (v7.0): zapped pages are
batched in the mmu_gather and their references dropped only after the TLB
flush; page tables go through tlb_remove_table and are freed only when no
GUP-fast walker can still see them (the walker runs with IRQs off, which
holds off the RCU grace period / the IPI).

Each thread's CPU caches two kinds of translation of its mm:

* leaf entries, ``TlbEntry(folio, write)``: a user access uses one without
  looking at the page table, so a write-protect is effective for other
  CPUs only after the flush;
* paging-structure entries (the x86 "paging-structure caches", Intel SDM
  vol. 3A 4.10.3; arm64's walk cache): the pmd a walk read, so a later walk
  goes straight to the cached PTE table without re-reading the pmd
  (model/cpu.py). A flush drops them only when it says page tables were
  freed or replaced: ``freed_tables`` of flush_tlb_mm_range, which
  tlb_flush() passes from the mmu_gather (set by pte_free_tlb /
  tlb_remove_table) and x86's flush_tlb_range() always passes (it may be
  freeing or moving tables); a full flush (flush_tlb_mm) drops everything.
  A flush without it is leaf-only, as with INVLPGB_FINAL_ONLY
  (__invlpgb_flush_user_nr_nosync, v6.15+) or arm64's last-level TLBI, and
  as for x86 CPUs in lazy TLB mode, which native_flush_tlb_multi skips
  unless ``info->freed_tables``. So a page table may be freed, or its pmd
  pointed elsewhere for good, only after a flush with ``freed_tables``.

Every flush is a scheduling point.
"""

from __future__ import annotations

from model.pgtable import pmd_index


class MmuGather:
    """struct mmu_gather: pages and tables to free once the TLB is flushed."""

    __slots__ = ("mm", "pages", "tables", "start", "end", "fullmm", "freed_tables")

    def __init__(self, mm, fullmm=False):
        self.mm = mm
        self.pages = []
        self.tables = []
        self.start = None
        self.end = None
        self.fullmm = fullmm
        self.freed_tables = False     # forces a flush of everything (tlb_finish_mmu, nested)


class TlbOps:
    """TLB maintenance as the kernel does it."""

    # -- the per-CPU caches ---------------------------------------------------------
    def paging_structure_cache(self, thread) -> dict:
        """The pmd entries ``thread``'s CPU cached, by pmd index (model/cpu.py fills it)."""
        caches = self.__dict__.get("_psc")
        if caches is None:
            caches = self._psc = {}
        psc = caches.get(thread)
        if psc is None:
            psc = caches[thread] = {}
        return psc

    def _tlb_drop(self, mm, start: int, end: int) -> None:
        """Drop the leaf entries of [start, end) on every CPU of ``mm``."""
        for thread in mm.threads:
            tlb = thread.tlb
            if not tlb:
                continue
            for va in [va for va in tlb if start <= va < end]:
                self.sched.log_at(thread, "tlb", va, tlb[va], None)
                del tlb[va]

    def _psc_drop(self, mm, start: int, end: int) -> None:
        """Drop the paging-structure entries of the pmds covering [start, end)."""
        first, last = pmd_index(start), pmd_index(end - 1)
        for thread in mm.threads:
            psc = self.paging_structure_cache(thread)
            for idx in [i for i in sorted(psc) if first <= i <= last]:
                self.sched.log_at(thread, "psc", idx, psc[idx], None)
                del psc[idx]

    def _tlb_flush_all(self, mm) -> None:
        """A full flush on every CPU of ``mm``: leaf and paging-structure entries."""
        for thread in mm.threads:
            if thread.tlb:
                self.sched.log(thread, "tlb", dict(thread.tlb), {})
                thread.tlb.clear()
            psc = self.paging_structure_cache(thread)
            if psc:
                self.sched.log(thread, "psc", dict(psc), {})
                psc.clear()

    async def flush_tlb_mm(self, mm, label: str = "flush_tlb_mm") -> None:
        """arch/x86/include/asm/tlbflush.h:flush_tlb_mm (v7.0): flush_tlb_mm_range(mm, 0,
        TLB_FLUSH_ALL, 0, true): every CPU of the mm drops everything."""
        await self.sched.point(label)
        self._tlb_flush_all(mm)

    async def flush_tlb_mm_range(self, mm, start: int, end: int, freed_tables: bool,
                                 label: str = "flush_tlb_mm_range") -> None:
        """arch/x86/mm/tlb.c:flush_tlb_mm_range (v7.0): the leaf entries of the range, and
        the paging-structure entries too when ``freed_tables``."""
        await self.sched.point(label)
        self._tlb_drop(mm, start, end)
        if freed_tables:
            self._psc_drop(mm, start, end)

    async def flush_tlb_range(self, vma, start: int, end: int,
                              label: str = "flush_tlb_range") -> None:
        """arch/x86/include/asm/tlbflush.h:flush_tlb_range (v7.0): flush_tlb_mm_range(...,
        freed_tables=true) -- callers may be moving or freeing page tables."""
        await self.flush_tlb_mm_range(vma.vm_mm, start, end, True, label)

    async def flush_tlb_page(self, vma, addr: int, label: str = "flush_tlb_page") -> None:
        """arch/x86/include/asm/tlbflush.h:flush_tlb_page (v7.0): flush_tlb_mm_range(...,
        PAGE_SHIFT, false), leaf-only."""
        await self.flush_tlb_mm_range(vma.vm_mm, addr, addr + 1, False, label)

    def inc_tlb_flush_pending(self, mm) -> None:
        """include/linux/mm_inline.h:inc_tlb_flush_pending (v6.x)."""
        self.sched.log(mm, "tlb_flush_pending", mm.tlb_flush_pending, mm.tlb_flush_pending + 1)
        mm.tlb_flush_pending += 1

    def dec_tlb_flush_pending(self, mm) -> None:
        self.sched.log(mm, "tlb_flush_pending", mm.tlb_flush_pending, mm.tlb_flush_pending - 1)
        mm.tlb_flush_pending -= 1

    def mm_tlb_flush_pending(self, mm) -> bool:
        return mm.tlb_flush_pending > 0

    # -- mmu_gather (mm/mmu_gather.c, v6.x) --
    def tlb_gather_mmu(self, mm, fullmm: bool = False) -> MmuGather:
        """mm/mmu_gather.c:tlb_gather_mmu / tlb_gather_mmu_fullmm (v6.x)."""
        tlb = MmuGather(mm, fullmm)
        self.inc_tlb_flush_pending(mm)
        return tlb

    def tlb_remove_tlb_entry(self, tlb: MmuGather, addr: int) -> None:
        """include/asm-generic/tlb.h:tlb_remove_tlb_entry: widen the range to flush."""
        tlb.start = addr if tlb.start is None else min(tlb.start, addr)
        tlb.end = addr + 1 if tlb.end is None else max(tlb.end, addr + 1)

    def tlb_remove_page(self, tlb: MmuGather, folio) -> None:
        """include/asm-generic/tlb.h:__tlb_remove_folio_pages: defer the put past the flush."""
        tlb.pages.append(folio)

    def tlb_remove_table(self, tlb: MmuGather, table) -> None:
        """mm/mmu_gather.c:tlb_remove_table: free the table after the flush and RCU."""
        tlb.tables.append(table)

    async def tlb_flush_mmu(self, tlb: MmuGather, label: str = "tlb_flush_mmu") -> None:
        """mm/mmu_gather.c:tlb_flush_mmu (v7.0): flush the TLB (arch/x86/include/asm/tlb.h:
        tlb_flush passes tlb->freed_tables, which pte_free_tlb / tlb_remove_table set), then
        free pages and tables (tlb_table_flush: tlb_table_invalidate, then RCU)."""
        if tlb.start is not None or tlb.tables or tlb.freed_tables:
            await self.sched.point(label)
            if tlb.fullmm or tlb.tables or tlb.freed_tables:
                self._tlb_flush_all(tlb.mm)
            else:
                self._tlb_drop(tlb.mm, tlb.start, tlb.end)
            tlb.start = tlb.end = None
        pages, tlb.pages = tlb.pages, []
        for folio in pages:
            # mm/swap_state.c:free_pages_and_swap_cache (v7.0): an unmapped folio
            # leaves the swap cache before the gather's reference goes
            self.free_swap_cache(folio)
            self.folio_put(folio)
        tables, tlb.tables = tlb.tables, []
        for table in tables:
            self.free_table_rcu(table)

    async def tlb_finish_mmu(self, tlb: MmuGather, label: str = "tlb_finish_mmu") -> None:
        """mm/mmu_gather.c:tlb_finish_mmu (v7.0): with other PTE-batching threads on this mm
        (mm_tlb_flush_nested, 99baac21e458), flush everything: their zaps may have cleared
        PTEs this one found empty, with the flush still to come."""
        if tlb.mm.tlb_flush_pending > 1:                 # mm_tlb_flush_nested
            tlb.fullmm = True
            tlb.freed_tables = True
        await self.tlb_flush_mmu(tlb, label)
        tlb.freed_tables = False
        self.dec_tlb_flush_pending(tlb.mm)
