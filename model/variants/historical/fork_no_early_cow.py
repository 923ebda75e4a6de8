"""The historical variant fork-no-early-cow: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/fork-no-early-cow.diff.
"""

from __future__ import annotations

from model.kernel import Kernel
from model.variants import register


@register
class ForkNoEarlyCow(Kernel):
    """fork() shares and write-protects pinned anon pages (no early COW).

    Fixed by 70e806e4e645 "mm: Do early cow for pinned pages during fork() for ptes"
    (v5.9-rc7, with 008cfe4418b3 "mm: Introduce mm_struct.has_pinned"): a page that
    may be pinned is copied for the child at fork (copy_present_page) and the
    parent's PTE is left as it is. Before it, mm/memory.c:copy_one_pte (v5.8) called
    ``page_dup_rmap(page, false)`` for every page and write-protected it in parent
    and child; the parent's next write COWed away from the pinned page (RDMA, io_uring
    fixed buffers: "fork needs MADV_DONTFORK").

    Translation onto v7.0: the early-COW decision lives in
    folio_try_dup_anon_rmap_pte (v5.19: -EBUSY when the exclusive page may be pinned
    makes copy_present_ptes copy). Pre-fix it never fails: it duplicates the
    mapping, and -- as sharing a page means in the PageAnonExclusive model -- clears
    PageAnonExclusive.
    """

    name = "fork-no-early-cow"
    description = "70e806e4e645 reverted: fork shares and write-protects pinned anon pages"
    expected_oracle = "pin-coherence"
    affected = "<= v5.9-rc6"
    fix = "70e806e4e645 mm: Do early cow for pinned pages during fork() for ptes"

    def folio_try_dup_anon_rmap_pte(self, folio, dst_vma, src_vma) -> int:
        """mm/memory.c:copy_one_pte (v5.8): page_dup_rmap() whether pinned or not."""
        if folio.anon_exclusive:
            self.ClearPageAnonExclusive(folio)
        self.folio_mapcount_add(folio, 1)
        return 0
