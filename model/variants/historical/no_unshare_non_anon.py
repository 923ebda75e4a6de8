"""The historical variant no-unshare-non-anon: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/no-unshare-non-anon.diff.
"""

from __future__ import annotations

from model.kernel import Kernel
from model.page import ANON
from model.variants import register


@register
class NoUnshareNonAnon(Kernel):
    """R/O long-term pins of page-cache pages and the zero page in COW mappings.

    Fixed by 84209e87c696 "mm/gup: reliable R/O long-term pinning in COW mappings"
    (v6.2, on 8d6a0ac09a16 "mm: extend FAULT_FLAG_UNSHARE support to anything in a
    COW mapping"). Before it mm/internal.h:gup_must_unshare (v6.1) returned false
    for every !PageAnon page: a R/O FOLL_LONGTERM pin of the page-cache page or
    shared zero page mapped R/O in a private writable mapping pinned that page, and
    the process's next write COWed it into a fresh anon page the pin never sees
    (cow.c's non-anon "R/O longterm GUP pin" cases).

    Translation onto v7.0: gup_must_unshare's non-anon branch (FOLL_LONGTERM, COW
    mapping, or no VMA for GUP-fast) is dropped; the anon rule is unchanged.
    """

    name = "no-unshare-non-anon"
    description = "84209e87c696 reverted: R/O longterm pins of non-anon pages do not unshare"
    expected_oracle = "pin-coherence"
    affected = "v5.19 .. v6.1"
    fix = "84209e87c696 mm/gup: reliable R/O long-term pinning in COW mappings"

    def gup_must_unshare(self, vma, flags: int, folio) -> bool:
        """mm/internal.h:gup_must_unshare (v5.19): ``if (!PageAnon(page)) return false;``"""
        if folio.kind != ANON:
            return False
        return super().gup_must_unshare(vma, flags, folio)
