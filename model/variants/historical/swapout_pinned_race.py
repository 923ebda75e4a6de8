"""The historical variant swapout-pinned-race: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/swapout-pinned-race.diff.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.kernel import Kernel
from model.variants import register


@register
class SwapoutPinnedRace(Kernel):
    """Swap-out checks pins only before it unmaps: a GUP-fast pin can slip in between.

    Fixed by the PageAnonExclusive series (v5.19), 6c287605fd56 "mm: remember
    exclusively mapped anonymous pages with PG_anon_exclusive", whose
    try_to_unmap_one clears the PTE first and then calls page_try_share_anon_rmap()
    (today folio_try_share_anon_rmap_pte), which fails for a maybe-pinned page and
    makes the unmap restore the PTE and abort. From feb889fb40fa (v5.11-rc5) to
    v5.18 the only pin check of swap-out was shrink_page_list's
    page_maybe_dma_pinned() before add_to_swap(), taken with the PTE still present:
    a GUP-fast pin after it still had the page unmapped into the swap cache ("If we
    race with someone pinning a page, we can trigger the same issue as in the
    FOLL_GET case", PAE cover letter): mm/rmap.c:try_to_unmap_one (v5.18) checked no
    pins.

    Translation onto v7.0: folio_try_share_anon_rmap_pte without the pin check --
    it clears PageAnonExclusive of whatever it unmaps, so the swap PTE keeps the
    v5.19 exclusive bit. The pinned page thus loses PageAnonExclusive while pinned,
    which v7.0's CONFIG_DEBUG_VM sanity check reports when GUP-fast returns the pin
    or when it is unpinned (VM_BUG_ON); a fork before the swap-in makes the next
    write COW away from the pin (pin-coherence), the historical outcome. (A plain
    read then write no longer does: the exclusive swap PTE, v5.19, maps the pinned
    page back writable.)
    """

    name = "swapout-pinned-race"
    description = "pre-v5.19 try_to_unmap_one: no pin check after clearing the PTE"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.11-rc5 .. v5.18 (before that: swapout-pinned)"
    fix = "6c287605fd56 mm: remember exclusively mapped anonymous pages with PG_anon_exclusive"

    def folio_try_share_anon_rmap_pte(self, folio) -> int:
        """mm/rmap.c:try_to_unmap_one (v5.18) anon branch: the page is unmapped to
        swap whatever its pins; PageAnonExclusive is cleared as v7.0 does for a page
        that becomes shared through its swap entry."""
        if not folio.anon_exclusive:
            raise KernelBug("folio_try_share_anon_rmap on a page that is not exclusive",
                            pfn=folio.pfn)
        self.ClearPageAnonExclusive(folio)
        return 0
