"""The historical variant reuse-mapcount: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/reuse-mapcount.diff.
"""

from __future__ import annotations

from model.flags import FAULT_FLAG_UNSHARE, VM_MAYSHARE, VM_SHARED
from model.kernel import Kernel
from model.memory import VmFault
from model.page import ANON
from model.pgtable import pte_same
from model.variants import register
from model.variants.historical.common import _ReuseSwapPage


@register
class ReuseMapcount(_ReuseSwapPage, Kernel):
    """CVE-2020-29374: do_wp_page reuses an anon page whose mapcount (+ swapcount) is 1.

    Fixed in the fault path by 09854ba94c6a "mm: do_wp_page() simplification"
    (v5.9), which reuses only when page_count() is 1; v5.8 had worked around it in
    GUP instead (17839856fd58, forced COW for FOLL_GET/FOLL_PIN, reverted in v5.9
    by a308c71bf1e6). Before it, mm/memory.c:do_wp_page (v5.7) reused an anon page
    iff reuse_swap_page() -- page_mapcount + swap count <= 1 -- under the page
    lock: trylock_page, or else drop the ptl, lock_page, retake the ptl and give up
    if the PTE changed. GUP and pipe references are invisible to the mapcount, so a
    child that vmsplice()d the page and unmapped it leaves the parent reusing it in
    place: the child's pipe then returns what the parent writes after fork.

    Translation onto v7.0: v5.7 had no PageAnonExclusive; the reuse decision here
    ignores it (where it is set the mapcount is 1 anyway) and, as v7.0's reuse does,
    marks the reused page exclusive; FAULT_FLAG_UNSHARE (v5.19) reuses without
    making the PTE writable, as v7.0 does. No KSM in the model. Swap-in reuse is the
    separate variant swapin-reuse-mapcount.
    """

    name = "reuse-mapcount"
    description = "CVE-2020-29374: do_wp_page reuses by mapcount + swapcount (reuse_swap_page)"
    expected_oracle = "writable-shared"
    affected = "<= v5.7 (v5.8 worked around it in GUP with 17839856fd58)"
    fix = "09854ba94c6a mm: do_wp_page() simplification"

    async def do_wp_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_wp_page (v5.7) anon branch on the v7.0 model."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        mm = vma.vm_mm
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            # Shared mapping: we are guaranteed VM_WRITE and FAULT_FLAG_WRITE here.
            return await self.wp_page_shared(vmf, folio)
        if folio is not None and folio.kind == ANON:
            if not self.folio_trylock(folio):
                self.folio_get(folio)
                self.pte_unmap_unlock(vmf.ptep)
                await self.folio_lock(folio, "do_wp_page:lock_page")
                vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address,
                                                          "do_wp_page:pte_offset_map_lock")
                if vmf.ptep is None or not pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte):
                    self.folio_unlock(folio)
                    if vmf.ptep is not None:
                        self.pte_unmap_unlock(vmf.ptep)
                    self.folio_put(folio)
                    return 0
                self.folio_put(folio)
            reuse, total_map_swapcount = self.reuse_swap_page(folio)
            if reuse:
                if total_map_swapcount == 1:
                    # The page is all ours. Move it to our anon_vma so the rmap code
                    # will not search our parent or siblings.
                    self.folio_move_anon_rmap(folio, vma)
                self.folio_unlock(folio)
                if not folio.anon_exclusive:
                    self.SetPageAnonExclusive(folio)
                if unshare:
                    self.pte_unmap_unlock(vmf.ptep)
                    return 0
                self.wp_page_reuse(vmf, folio)
                return 0
            self.folio_unlock(folio)
        # copy: Ok, we need to copy. Oh, well..
        if folio is not None:
            self.folio_get(folio)
        self.pte_unmap_unlock(vmf.ptep)
        return await self.wp_page_copy(vmf)
