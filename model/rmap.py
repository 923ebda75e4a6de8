"""Reverse mapping: mapcount, PageAnonExclusive at map/dup/share time, rmap walks.

Mirrors mm/rmap.c and include/linux/rmap.h (v7.0) for order-0 folios. The
rules that matter for COW (from the PageAnonExclusive series, v5.19):
a fresh anon page mapped by do_anonymous_page/wp_page_copy/swap-in of an
exclusive entry is RMAP_EXCLUSIVE; fork duplicates a mapping only after
clearing PageAnonExclusive, which fails (-EBUSY) if the page may be pinned;
swap-out clears it only after clearing the PTE, and also fails if pinned.

rmap_walk finds the PTEs mapping a folio the way the kernel's anon_vma /
i_mmap walk does: every VMA that could map it, then the PTE at that
address is checked (page_vma_mapped_walk). A VMA munmap has already taken
out of the mm's tree stays linked in the rmap until free_pgtables()
unlinks it (unlink_anon_vmas / unlink_file_vma, under the rmap lock for
write): mm/vma.c:vms_complete_munmap_vmas (v7.0) zaps the detached VMAs
first, so reclaim's try_to_unmap_one can meet zap_pte_range on one table.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import EBUSY, is_cow_mapping
from model.page import ANON, folio_maybe_dma_pinned
from model.pgtable import pmd_index, pte_index


class RmapOps:
    """include/linux/rmap.h and mm/rmap.c."""

    def folio_add_new_anon_rmap(self, folio, vma, addr: int, exclusive: bool) -> None:
        """mm/rmap.c:folio_add_new_anon_rmap (v7.0): first mapping of a new anon folio."""
        if not exclusive and not folio.locked:
            raise KernelBug("folio_add_new_anon_rmap of a shared folio that is not locked",
                            pfn=folio.pfn)
        if not vma.anon_vma:
            raise KernelBug("__folio_set_anon: VMA has no anon_vma", pfn=folio.pfn)
        folio.kind = ANON
        folio.mapping = None
        folio.index = vma.linear_page_index(addr)
        self.folio_mapcount_add(folio, 1)          # atomic_set(&folio->_mapcount, 0)
        if exclusive:
            self.SetPageAnonExclusive(folio)

    def folio_add_anon_rmap_pte(self, folio, vma, addr: int, exclusive: bool) -> None:
        """mm/rmap.c:folio_add_anon_rmap_ptes -> __folio_add_anon_rmap (v7.0)."""
        self.folio_mapcount_add(folio, 1)
        if exclusive:
            self.SetPageAnonExclusive(folio)
        # VM_WARN_ON_FOLIO(_mapcount > 0 && PageAnonExclusive(page))
        if folio.mapcount > 1 and folio.anon_exclusive:
            raise KernelBug(f"{folio.name} mapped {folio.mapcount} times but PageAnonExclusive",
                            pfn=folio.pfn)

    def folio_add_file_rmap_pte(self, folio, vma) -> None:
        """mm/rmap.c:folio_add_file_rmap_ptes (v7.0)."""
        self.folio_mapcount_add(folio, 1)

    def folio_dup_file_rmap_pte(self, folio, dst_vma) -> None:
        """include/linux/rmap.h:folio_dup_file_rmap_pte (v7.0)."""
        self.folio_mapcount_add(folio, 1)

    def folio_remove_rmap_pte(self, folio, vma) -> None:
        """mm/rmap.c:folio_remove_rmap_ptes -> __folio_remove_rmap (v7.0)."""
        self.folio_mapcount_add(folio, -1)

    def folio_move_anon_rmap(self, folio, vma) -> None:
        """mm/rmap.c:folio_move_anon_rmap (v7.0): an rmap optimisation only."""
        if not folio.locked:
            raise KernelBug("folio_move_anon_rmap on an unlocked folio", pfn=folio.pfn)

    def folio_needs_cow_for_dma(self, vma, folio) -> bool:
        """include/linux/mm.h:folio_needs_cow_for_dma (v7.0)."""
        if not (vma.vm_mm.write_protect_seq.sequence & 1):
            raise KernelBug("folio_needs_cow_for_dma outside a write_protect_seq section",
                            pfn=folio.pfn)
        if not vma.vm_mm.has_pinned:
            return False
        return folio_maybe_dma_pinned(folio)

    def folio_try_dup_anon_rmap_pte(self, folio, dst_vma, src_vma) -> int:
        """include/linux/rmap.h:__folio_try_dup_anon_rmap, PTE level (v7.0)."""
        maybe_pinned = self.folio_needs_cow_for_dma(src_vma, folio)
        if maybe_pinned and folio.anon_exclusive:
            return -EBUSY
        if folio.anon_exclusive:
            self.ClearPageAnonExclusive(folio)
        self.folio_mapcount_add(folio, 1)
        return 0

    def folio_try_share_anon_rmap_pte(self, folio) -> int:
        """include/linux/rmap.h:__folio_try_share_anon_rmap (v7.0).

        The caller has cleared the PTE (A1); we check pins (A2) and clear
        PageAnonExclusive (A3); the caller then installs the new entry (A4).
        """
        if not folio.anon_exclusive:
            raise KernelBug("folio_try_share_anon_rmap on a page that is not exclusive",
                            pfn=folio.pfn)
        if folio_maybe_dma_pinned(folio):
            return -EBUSY
        self.ClearPageAnonExclusive(folio)
        return 0

    def rmap_walk(self, folio):
        """mm/rmap.c:rmap_walk_anon / rmap_walk_file (v7.0): (vma, addr) of each PTE that
        maps ``folio``. The VMAs that could map it are fixed when the walk starts (the
        walker holds the rmap lock for read; linking a VMA takes it for write) and are
        visited in interval-tree order -- by vm_pgoff, then the order they were linked --
        and each PTE is looked at only when the walk gets there (page_vma_mapped_walk's
        lockless check_pte): an entry mremap's move_ptes or fork's copy_pte_range puts
        in a later VMA meanwhile is found, as the kernel's walk finds it."""
        candidates = []
        for mm in self.mms:
            if mm.dead:
                continue
            for vma in mm.vmas + mm.detached_vmas:
                if folio.kind == ANON:
                    if vma.vm_file is not None and not is_cow_mapping(vma.vm_flags):
                        continue
                elif vma.vm_file is None or vma.vm_file is not folio.mapping:
                    continue
                addr = vma.vm_start + folio.index - vma.vm_pgoff       # vma_address
                if vma.vm_start <= addr < vma.vm_end:
                    candidates.append((vma, addr))
        candidates.sort(key=lambda c: (c[0].vm_pgoff, c[0].vid))
        for vma, addr in candidates:
            mm = vma.vm_mm
            if mm.dead:
                continue
            pmd = mm.pmd[pmd_index(addr)]
            if pmd is None:
                continue
            pte = pmd.table.ptes[pte_index(addr)]
            if pte is not None and pte.present and pte.folio is folio:
                yield vma, addr
