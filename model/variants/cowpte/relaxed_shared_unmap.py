"""COW PTE, the relaxed form, with reclaim changing a shared table for every sharer.

The other choice the thread leaves open for reclaim (cowpte-relaxed breaks
the table from the rmap walk). David Hildenbrand, <c12f848d-cb54-2998-8650-
2c2a5707932d@redhat.com>: "Doing it that way might not require any
questionable GUP hacks and swapping, MMU notifiers etc. 'might just work as
expected' because the accounting remains unchanged", and "Any (most once we
want to *optimize* rmap handling) modification attempts require breaking
COW": the rmap walk is the modification that need not break. Every sharer
has its own mapcount, reference and (once swapped) swap count for an entry
of the table, so try_to_unmap_one, meeting a shared table, replaces the
entry once for all of them, under the table's ptl: the PTE is cleared,
every sharer's TLB gets a (deferred) flush, the swap entry takes a swap
count per sharer, and the page loses a mapcount and a reference per
sharer -- the table's refcount. The walk then finds the page unmapped in
the other sharers' VMAs. A page in a shared table is never
PageAnonExclusive, so the swap entry is not exclusive.

What the design needs that the kernel does not have: the mms sharing a
table, to flush their TLBs (the table page counts its sharers, it does not
list them); the model takes them from the pmds pointing at the table, as a
per-table sharer list would give them.

Everything else is cowpte-relaxed.
"""

from __future__ import annotations

from model.pgtable import PtePointer
from model.pgtable import pmd_index, pte_index, swp_entry_to_pte
from model.variants import register
from model.variants.cowpte.relaxed import CowPteRelaxed


@register
class CowPteRelaxedSharedUnmap(CowPteRelaxed):
    name = "cowpte-relaxed-shared-unmap"
    description = ("COW PTE, relaxed, reclaim unmaps a page from a shared table for every "
                   "sharer at once")
    patch = "<c12f848d-cb54-2998-8650-2c2a5707932d@redhat.com> (proposal, on v6.0)"
    affected = "proposal, not implemented upstream"

    async def cow_pte_rmap_shared(self, mm, addr: int) -> bool:
        """try_to_unmap_one handles a shared table itself (below); nothing else walks the
        rmap to change PTEs."""
        return False

    async def try_to_unmap_one(self, folio, vma, addr: int, batch_flush: bool) -> bool:
        """mm/rmap.c:try_to_unmap_one (v7.0), a shared table: the entry changes for every
        sharer at once. A private table takes the ordinary path."""
        mm = vma.vm_mm
        idx = pmd_index(addr)
        pmd = mm.pmd[idx]
        if pmd is None or pmd.write:
            return await super().try_to_unmap_one(folio, vma, addr, batch_flush)
        sched = self.sched
        table = pmd.table
        with self.cow_pte_operation():
            await table.ptl.lock(sched, "page_vma_mapped_walk:pte_offset_map_lock(shared)")
            if mm.pmd[idx] != pmd:
                table.ptl.unlock(sched)            # broken meanwhile: a private table now
                return await self.try_to_unmap_one(folio, vma, addr, batch_flush)
            ptep = PtePointer(table, pte_index(addr))
            pteval = self.ptep_get(ptep)
            if pteval is None or not pteval.present or pteval.folio is not folio:
                table.ptl.unlock(sched)
                return True
            nr = table.refcount
            anon_exclusive = folio.anon_exclusive
            with self.in_place_accounting():
                pteval = self.ptep_get_and_clear(mm, addr, ptep)            # A1
            await self.cow_pte_flush_sharers(table, mm, addr, batch_flush)
            if pteval.dirty:
                self.folio_mark_dirty(folio)
            for _ in range(nr):
                self.folio_dup_swap(folio)
            await sched.point("try_to_unmap_one:folio_try_share_anon_rmap_pte(shared)")
            if anon_exclusive and self.folio_try_share_anon_rmap_pte(folio):  # A2, A3
                for _ in range(nr):
                    self.folio_put_swap(folio)
                with self.in_place_accounting():
                    self.set_pte_at(mm, addr, ptep, pteval)
                table.ptl.unlock(sched)
                return False
            swp_pte = swp_entry_to_pte(folio.swap, exclusive=anon_exclusive,
                                       soft_dirty=pteval.soft_dirty)
            with self.in_place_accounting():
                self.set_pte_at(mm, addr, ptep, swp_pte)                     # A4
            for _ in range(nr):
                self.folio_remove_rmap_pte(folio, vma)
                self.folio_put(folio)
            table.ptl.unlock(sched)
        return True

    async def cow_pte_flush_sharers(self, table, mm, addr: int, batch_flush: bool) -> None:
        """Flush (or defer to try_to_unmap_flush) the entry on every CPU of every mm that
        shares ``table`` -- the sharer list the design needs."""
        for sharer in [m for m in self.mms if not m.dead and
                       any(p is not None and p.table is table for p in m.pmd)]:
            if batch_flush:
                self.set_tlb_ubc_flush_pending(sharer)
            else:
                await self.flush_tlb_mm_range(sharer, addr, addr + 1, False,
                                              "try_to_unmap_one:ptep_clear_flush(shared)")
