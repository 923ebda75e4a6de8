"""The historical variant ro-pin-no-unshare: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/ro-pin-no-unshare.diff.
"""

from __future__ import annotations

from model.kernel import Kernel
from model.page import ANON
from model.variants import register


@register
class RoPinNoUnshare(Kernel):
    """R/O FOLL_PIN of a possibly shared anon page pins it without unsharing.

    Fixed by a7f226604170 "mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a
    possibly shared anonymous page" (v5.19), which added gup_must_unshare() for anon
    pages (``return !PageAnonExclusive(page)``), -EMLINK in follow_page_pte and the
    GUP-fast back-off. Before it mm/gup.c:follow_page_pte (v5.18) and GUP-fast
    grabbed the page of a R/O PTE for a R/O pin, shared or not -- "(1) Ignore and
    pin -- what we do right now" -- and the next write fault replaced the page under
    the pin.

    Translation onto v7.0: gup_must_unshare says no for anon pages. Its non-anon
    FOLL_LONGTERM branch is a later fix (84209e87c696, variant no-unshare-non-anon)
    and is kept. v7.0's CONFIG_DEBUG_VM check in follow_page_pte (v5.19, "mm/gup:
    sanity-check with CONFIG_DEBUG_VM that anonymous pages are exclusive when
    (un)pinning") fires on the pin it lets through: tests/planted.py has the same
    change as a test-only planted bug.
    """

    name = "ro-pin-no-unshare"
    description = "a7f226604170 reverted: R/O FOLL_PIN of a shared anon page does not unshare"
    expected_oracle = "VM_BUG_ON"
    affected = "<= v5.18"
    fix = ("a7f226604170 mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly "
           "shared anonymous page")

    def gup_must_unshare(self, vma, flags: int, folio) -> bool:
        """mm/internal.h:gup_must_unshare without its anon case (before v5.19)."""
        if folio.kind == ANON:
            return False
        return super().gup_must_unshare(vma, flags, folio)
