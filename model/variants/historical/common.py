"""What several historical variants share: kernel functions v7.0 no longer has."""

from __future__ import annotations

from model.oracles.errors import VM_BUG_ON


class _ReuseSwapPage:
    """mm/swapfile.c:reuse_swap_page (v4.14 .. v5.17), for the variants that use it."""

    def reuse_swap_page(self, folio) -> tuple[bool, int]:
        """mm/swapfile.c:reuse_swap_page (v5.7), order-0 page: reuse iff mapcount +
        swapcount <= 1; the page's refcount (GUP and pipe references) is never looked
        at. When the count is 1 the page leaves the swap cache and is marked dirty (the
        model has no writeback in flight). Returns (reuse, total_map_swapcount)."""
        VM_BUG_ON(not folio.locked, "reuse_swap_page on an unlocked page", pfn=folio.pfn)
        swapcount = self._slot(folio.swap).count if folio.swapcache else 0
        count = folio.mapcount + swapcount
        if count == 1 and folio.swapcache:
            self.swap_cache_del_folio(folio)              # delete_from_swap_cache
            self.folio_mark_dirty(folio)
        return count <= 1, count
