"""Per-CPU TLBs, TLB flushes and the mmu_gather.

Mirrors arch/x86/mm/tlb.c (flush_tlb_mm_range, IPI-based: a flush returns
only once every CPU running the mm dropped the translations) and
include/asm-generic/tlb.h + mm/mmu_gather.c (v6.x): zapped pages are
batched in the mmu_gather and their references dropped only after the TLB
flush; page tables go through tlb_remove_table and are freed only when no
GUP-fast walker can still see them (the walker runs with IRQs off, which
holds off the RCU grace period / the IPI).

Each thread's CPU caches translations of its mm as ``TlbEntry(folio,
write)``. A user access uses a cached entry without looking at the page
table, so a write-protect is effective for other CPUs only after the flush.
Every flush is a scheduling point.
"""

from __future__ import annotations


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

    def _tlb_drop(self, mm, start: int, end: int) -> None:
        for thread in mm.threads:
            tlb = thread.tlb
            if not tlb:
                continue
            for va in [va for va in tlb if start <= va < end]:
                self.sched.log_at(thread, "tlb", va, tlb[va], None)
                del tlb[va]

    async def flush_tlb_mm(self, mm, label: str = "flush_tlb_mm") -> None:
        """arch/x86/mm/tlb.c:flush_tlb_mm (v6.x): every CPU of the mm drops everything."""
        await self.sched.point(label)
        for thread in mm.threads:
            if thread.tlb:
                self.sched.log(thread, "tlb", dict(thread.tlb), {})
                thread.tlb.clear()

    async def flush_tlb_range(self, vma, start: int, end: int,
                              label: str = "flush_tlb_range") -> None:
        """arch/x86/include/asm/tlbflush.h:flush_tlb_range (v6.x)."""
        await self.sched.point(label)
        self._tlb_drop(vma.vm_mm, start, end)

    async def flush_tlb_page(self, vma, addr: int, label: str = "flush_tlb_page") -> None:
        await self.sched.point(label)
        self._tlb_drop(vma.vm_mm, addr, addr + 1)

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
        """mm/mmu_gather.c:tlb_flush_mmu (v6.x): flush the TLB, then free pages and tables."""
        if tlb.start is not None or tlb.tables or tlb.freed_tables:
            await self.sched.point(label)
            if tlb.fullmm or tlb.tables or tlb.freed_tables:
                for thread in tlb.mm.threads:
                    if thread.tlb:
                        self.sched.log(thread, "tlb", dict(thread.tlb), {})
                        thread.tlb.clear()
            else:
                self._tlb_drop(tlb.mm, tlb.start, tlb.end)
            tlb.start = tlb.end = None
        pages, tlb.pages = tlb.pages, []
        for folio in pages:
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
