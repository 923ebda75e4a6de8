"""The historical variant swapout-pinned: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/swapout-pinned.diff.
"""

from __future__ import annotations

from model.page import ANON, folio_maybe_dma_pinned
from model.variants import register
from model.variants.historical.swapout_pinned_race import SwapoutPinnedRace


@register
class SwapoutPinned(SwapoutPinnedRace):
    """Reclaim puts pinned pages into the swap cache and unmaps them.

    Fixed by feb889fb40fa "mm: don't put pinned pages into the swap cache" (v5.11-rc5,
    in v5.10.y), the two lines ``if (page_maybe_dma_pinned(page)) goto keep_locked;``
    before add_to_swap() in mm/vmscan.c:shrink_page_list (v5.11). Before it
    (mm/vmscan.c:shrink_page_list (v5.10)) nothing in
    swap-out looked at pins (try_to_unmap_one did not either: variant
    swapout-pinned-race, whose change this variant inherits, as kernels before
    v5.11-rc5 had both): reclaim unmapped a pinned page, the next fault mapped it
    back R/O and the next write COWed it away from the pin.

    Translation onto v7.0: shrink_folio without the folio_maybe_dma_pinned() check
    before folio_alloc_swap(). v7.0's later check after a successful unmap
    (d824ec2a1546-style "no point in trying to reclaim folio if it is pinned") is a
    different fix and stays; it only keeps the unmapped page in the swap cache.
    """

    name = "swapout-pinned"
    description = "feb889fb40fa reverted: reclaim swaps out pinned anon pages"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.9 .. v5.11-rc4 (harmful since 09854ba94c6a)"
    fix = "feb889fb40fa mm: don't put pinned pages into the swap cache"

    async def shrink_folio(self, folio) -> bool:
        """mm/vmscan.c:shrink_page_list (v5.10) for one folio, on the v7.0 model's
        shrink_folio: add_to_swap() whether the page is pinned or not."""
        if not self.folio_trylock(folio):
            return False
        if folio.kind == ANON and not folio.swapcache:
            if not self.folio_alloc_swap(folio, "shrink_folio_list:folio_alloc_swap"):
                self._activate_locked(folio)
                return False
            self.folio_mark_dirty(folio)
        if folio.mapcount:
            await self.try_to_unmap(folio, batch_flush=True)
            if folio.mapcount:
                self._activate_locked(folio)
                return False
        if folio_maybe_dma_pinned(folio):
            self._activate_locked(folio)
            return False
        if folio.dirty:
            await self.try_to_unmap_flush_dirty()
            if not await self.pageout(folio):
                self.folio_unlock(folio)                              # PAGE_KEEP: keep_locked
                return False
            if folio.writeback or folio.dirty:                        # PAGE_SUCCESS
                return False
            # A synchronous write - probably a ramdisk.  Go ahead and try to reclaim
            # the folio.
            if not self.folio_trylock(folio):
                return False
            if folio.dirty or folio.writeback:
                self.folio_unlock(folio)                              # keep_locked
                return False
        if not self._remove_mapping(folio):
            self.folio_unlock(folio)                                  # keep_locked
            return False
        return True
