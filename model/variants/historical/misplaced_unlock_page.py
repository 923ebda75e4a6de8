"""The historical variant misplaced-unlock-page: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/misplaced-unlock-page.diff.
"""

from __future__ import annotations

from model.flags import FAULT_FLAG_UNSHARE, VM_MAYSHARE, VM_SHARED
from model.kernel import Kernel
from model.memory import VmFault
from model.page import ANON
from model.variants import register


@register
class MisplacedUnlockPage(Kernel):
    """do_wp_page unlocks the page it reused after dropping the ptl: it may be freed by then.

    Fixed by be068f29034f "mm: fix misplaced unlock_page in do_wp_page()" (v5.9-rc7).
    09854ba94c6a (a v5.9 rc) made mm/memory.c:do_wp_page (v5.9-rc6) reuse an anon page
    when, under trylock_page, page_count() and page_mapcount() were 1, and end with
    ``wp_page_reuse(vmf); unlock_page(page); return VM_FAULT_WRITE;``. wp_page_reuse
    drops the ptl, and the reuse path holds no reference of its own (page_count()
    == 1 is the mapping's): "we keep the page locked until after we do the
    pte_unmap_unlock(), so now we have no guarantees that we hold the page
    reference. And then we unlock it - while somebody else might be freeing it"
    (Linus; s390 "Bad page state" with PG_locked). The fix unlocks before
    wp_page_reuse.

    Translation onto v7.0: the page lock is taken by wp_can_reuse_anon_folio (the
    v5.18 form of the same checks, v7.0 unlocks inside it); here a reusable page is
    returned still locked and do_wp_page unlocks it after wp_page_reuse. The model
    runs a task's consecutive releases in one step, so the window between the ptl
    release and unlock_page, where another CPU may zap and free the page, is a
    scheduling point here. PageAnonExclusive pages (v5.19) are reused without the
    page lock, as in v7.0, and FAULT_FLAG_UNSHARE (v5.19) unlocks before returning.
    The model reports the bug where the kernel did: freeing a page that is still
    locked is a "Bad page state" (PageOps.free_folio, VM_BUG_ON).
    """

    name = "misplaced-unlock-page"
    description = "be068f29034f reverted: do_wp_page unlocks the reused page after the ptl"
    expected_oracle = "VM_BUG_ON"
    #: a random walk misses it within 60 s in 3 trials of 5 (cowfuzz bench, 2026-11-29
    #: and 2026-12-05) and needs a median of 47,158 executions (fuzz.bench.depth, 5
    #: seeds): it counts with the deep tier
    tier = "deep"
    affected = "v5.9 release candidates before rc7 (since 09854ba94c6a)"
    fix = "be068f29034f mm: fix misplaced unlock_page in do_wp_page()"

    def wp_can_reuse_anon_folio(self, folio, vma) -> bool:
        """mm/memory.c:wp_can_reuse_anon_folio (v7.0) checks, but a reusable folio is
        returned locked (v5.9-rc6's do_wp_page unlocked it after wp_page_reuse)."""
        if folio._refcount > 3:
            return False
        if folio._refcount > 1 + int(folio.swapcache):
            return False
        if not self.folio_trylock(folio):
            return False
        if folio.swapcache:
            self.folio_free_swap(folio)
        if folio._refcount != 1:
            self.folio_unlock(folio)
            return False
        # "Ok, we've got the only folio reference from our mapping and the folio
        # is locked, it's dark out, and we're wearing sunglasses. Hit it."
        self.folio_move_anon_rmap(folio, vma)
        return True

    async def do_wp_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_wp_page (v5.9-rc6 unlock order) on the v7.0 model."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        ptl = vmf.ptep.table.ptl
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            # Shared mapping: we are guaranteed VM_WRITE and FAULT_FLAG_WRITE here.
            return await self.wp_page_shared(vmf, folio)
        # Private mapping: reuse an exclusive anonymous page, else copy.
        if folio is not None and folio.kind == ANON:
            locked = not folio.anon_exclusive and self.wp_can_reuse_anon_folio(folio, vma)
            if folio.anon_exclusive or locked:
                if not folio.anon_exclusive:
                    self.SetPageAnonExclusive(folio)
                if unshare:
                    if locked:
                        self.folio_unlock(folio)
                    ptl.unlock(self.sched)
                    return 0
                self.wp_page_reuse(vmf, folio)
                if locked:
                    await self.sched.point("do_wp_page:unlock_page")
                    self.folio_unlock(folio)
                return 0
        if folio is not None:
            self.folio_get(folio)
        ptl.unlock(self.sched)
        return await self.wp_page_copy(vmf)
