"""Deliberately broken designs: each gets one detail of a mechanism wrong, so that a test can
show the model catching it. None is registered (no input can name one); each is the
smallest change to a real design.
"""

from __future__ import annotations

from model.kernel import Kernel
from model.variants.cowpte.relaxed import CowPteRelaxed
from model.variants.cowpte.relaxed_shared_unmap import CowPteRelaxedSharedUnmap


# -- the paging-structure cache ------------------------------------------------------------
class TableFreedBeforeFlush(Kernel):
    """Upstream, except that tlb_remove_table frees a page table at once instead of after
    the mmu_gather's flush: a CPU whose paging-structure cache still holds the pmd walks
    freed memory."""

    name = "test-table-freed-before-flush"

    def tlb_remove_table(self, tlb, table) -> None:
        self.pte_free(table)


class TableFreedBeforeFlushNoCache(TableFreedBeforeFlush):
    """The same design on a model without paging-structure caches: nothing to catch."""

    name = "test-table-freed-before-flush-no-psc"
    paging_structure_caches = False


class RelaxedBreakLeafFlush(CowPteRelaxed):
    """cowpte-relaxed whose break flushes leaf entries only (no freed_tables): another CPU
    of the mm keeps walking the old table, which the other sharer, now its last user,
    changes in place."""

    name = "test-relaxed-break-leaf-flush"

    async def cow_pte_flush_replaced(self, mm, start: int, end: int) -> None:
        await self.flush_tlb_mm_range(mm, start, end, False, "break_cow_pte:flush_tlb_range")


class RelaxedBreakLeafFlushNoCache(RelaxedBreakLeafFlush):
    name = "test-relaxed-break-leaf-flush-no-psc"
    paging_structure_caches = False


# -- the relaxed fork's in-place preparation and its roll-back ------------------------------
class RelaxedRecoverKeepsRmap(CowPteRelaxed):
    """cowpte-relaxed whose roll-back restores the entry and PageAnonExclusive but not the
    child's mapcount and reference: the copy path then counts the child a second time."""

    name = "test-relaxed-recover-keeps-rmap"

    def cow_pte_unprepare(self, vma, ptep, addr, orig, exclusive) -> None:
        if exclusive:
            self.SetPageAnonExclusive(orig.folio)
        if self.ptep_get(ptep) != orig:
            self.set_pte_at(vma.vm_mm, addr, ptep, orig)


class RelaxedRecoverKeepsWrprotect(CowPteRelaxed):
    """cowpte-relaxed whose roll-back leaves the entry write-protected and the page not
    PageAnonExclusive: harmless, the copy path does both again for a COW mapping."""

    name = "test-relaxed-recover-keeps-wrprotect"

    def cow_pte_unprepare(self, vma, ptep, addr, orig, exclusive) -> None:
        if orig.present:
            folio = self.vm_normal_page(vma, addr, orig)
            if folio is not None:
                self.folio_remove_rmap_pte(folio, vma)
                self.folio_put(folio)
        else:
            self.swap_put_entries_direct(orig.swp)


# -- reclaim meeting a shared table ----------------------------------------------------------
class RelaxedForkSkipsReadOnly(CowPteRelaxed):
    """cowpte-relaxed whose fork tells a table it shared by the child's pmd being read-only
    (v4's rule) instead of by its own record: once the rmap walk broke the child's table,
    a later VMA of that table is copied into it a second time."""

    name = "test-relaxed-fork-skips-read-only"

    def cow_pte_shared_by_this_fork(self, dst_mm, idx) -> bool:
        return not dst_mm.pmd[idx].write


class SharedUnmapFlushesOneSharer(CowPteRelaxedSharedUnmap):
    """cowpte-relaxed-shared-unmap that flushes the TLB of the mm the rmap walk is visiting
    only: the other sharers keep translations of a page that is then freed."""

    name = "test-shared-unmap-flushes-one-sharer"

    async def cow_pte_flush_sharers(self, table, mm, addr, batch_flush) -> None:
        self.set_tlb_ubc_flush_pending(mm)
