"""The historical variant reuse-refcount: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/reuse-refcount.diff.
"""

from __future__ import annotations

from model.flags import FAULT_FLAG_UNSHARE, VM_MAYSHARE, VM_SHARED
from model.kernel import Kernel
from model.memory import VmFault
from model.page import ANON
from model.variants import register


@register
class ReuseRefcount(Kernel):
    """Reuse only by refcount: a write fault COWs a pinned exclusive page away from its pin.

    Fixed by the PageAnonExclusive series (v5.19), 6c287605fd56 "mm: remember
    exclusively mapped anonymous pages with PG_anon_exclusive": an exclusive page is
    reused whatever its refcount. From 09854ba94c6a (v5.9) to v5.18,
    mm/memory.c:do_wp_page (v5.18) reused an anon page only if page_count() said it
    was the only reference; v5.18 (53a05ad9f21d, d4c470970d45) gave it the form
    v7.0 keeps as wp_can_reuse_anon_folio: count > 3 gives up, lru_add_drain,
    count > 1 + swapcache gives up, trylock_page, try_to_free_swap, reuse iff
    count == 1. A pin (GUP_PIN_COUNTING_BIAS) always fails that, so once anything
    write-protected a pinned page (mprotect, clear_refs, swap) the process's next
    write replaced it: "wrong COW", cow.c cases 7, 13 and 14.

    Translation onto v7.0: do_wp_page without the PageAnonExclusive short-cut --
    only wp_can_reuse_anon_folio (the v5.18 checks) decides; a reused page is marked
    exclusive as v7.0 does. Everything else keeps PageAnonExclusive (GUP's unshare,
    fork's early COW, the mprotect upgrade).
    """

    name = "reuse-refcount"
    description = "v5.9-v5.18 do_wp_page: reuse only if page_count is 1 (no PageAnonExclusive)"
    expected_oracle = "pin-coherence"
    affected = "v5.9 .. v5.18"
    fix = "6c287605fd56 mm: remember exclusively mapped anonymous pages with PG_anon_exclusive"

    async def do_wp_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_wp_page (v5.18) anon branch on the v7.0 model."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        ptl = vmf.ptep.table.ptl
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            # Shared mapping: we are guaranteed VM_WRITE and FAULT_FLAG_WRITE here.
            return await self.wp_page_shared(vmf, folio)
        # Private mapping: reuse an anonymous page only we reference, else copy.
        if folio is not None and folio.kind == ANON and self.wp_can_reuse_anon_folio(folio, vma):
            if not folio.anon_exclusive:
                self.SetPageAnonExclusive(folio)
            if unshare:
                ptl.unlock(self.sched)
                return 0
            self.wp_page_reuse(vmf, folio)
            return 0
        if folio is not None:
            self.folio_get(folio)
        ptl.unlock(self.sched)
        return await self.wp_page_copy(vmf)
