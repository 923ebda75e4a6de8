"""The historical variant fork-gup-fast-race: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/fork-gup-fast-race.diff.
"""

from __future__ import annotations

from model.flags import FOLL_PIN
from model.kernel import Kernel
from model.variants import register


@register
class ForkGupFastRace(Kernel):
    """fork() vs GUP-fast: a FOLL_PIN taken while fork shares the page survives.

    Fixed by 57efa1fe5957 "mm/gup: prevent gup_fast from racing with COW during
    fork", which wraps copy_page_range in a write_protect_seq write section and has
    GUP-fast (FOLL_PIN) sample it before the lockless walk and unpin and fall back
    to slow GUP if it was odd or changed. Before it,
    mm/gup.c:internal_get_user_pages_fast (v5.9) walked the page table with IRQs off
    and no check at all against a concurrent fork: it could pin the page after fork
    decided it was not pinned (then page_maybe_dma_pinned(), today
    folio_try_dup_anon_rmap_pte clearing PageAnonExclusive) and before fork
    write-protected the parent's PTE -- "GUP now returns with a write protected
    page", shared with the child.

    Translation onto v7.0: gup_fast without the read side. The write side stays in
    copy_page_range (nothing reads it any more; v7.0's folio_needs_cow_for_dma
    asserts that it is held). v7.0's sanity_check_pinned_pages (CONFIG_DEBUG_VM,
    v5.19) still runs on what GUP-fast returns, and catches the pinned page that
    fork made non-exclusive: tests/planted.py has the same change as a test-only
    planted bug.
    """

    name = "fork-gup-fast-race"
    description = "57efa1fe5957 reverted: GUP-fast (FOLL_PIN) ignores write_protect_seq vs fork"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.9-rc7 .. v5.10 (fixed in v5.11-rc1, merged 2020-12-15)"
    fix = "57efa1fe5957 mm/gup: prevent gup_fast from racing with COW during fork"

    async def gup_fast(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:internal_get_user_pages_fast (v5.9) on the v7.0 gup_fast: the
        lockless walk with no write_protect_seq read section."""
        folio = await self.gup_fast_pmd_range(mm, addr, gup_flags)
        if gup_flags & FOLL_PIN and folio is not None:
            self.sanity_check_pinned_pages([folio])
        return folio
