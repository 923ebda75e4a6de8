"""The historical variant mprotect-ignores-pae: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/mprotect-ignores-pae.diff.
"""

from __future__ import annotations

from model.flags import VM_SHARED
from model.kernel import Kernel
from model.mprotect import maybe_change_pte_writable
from model.page import ANON
from model.variants import register


@register
class MprotectIgnoresPae(Kernel):
    """MUTANT (no mainline kernel shipped it): mprotect upgrades any anon PTE to writable.

    The private-mapping write upgrade of mprotect,
    mm/mprotect.c:can_change_pte_writable (v6.0), came with 64fe24a3e05e
    "mm/mprotect: try avoiding write faults for exclusive anonymous pages when
    changing protection" (v6.0) and checked PageAnonExclusive from its first version:
    "We can only special-case on exclusive anonymous pages, because we know that our
    write-fault handler similarly would map them writable without any additional
    checks while holding the PT lock". This mutant drops that check
    (can_change_pte_writable accepts any anon page), so mprotect(PROT_READ) then
    mprotect(PROT_READ|PROT_WRITE) after fork maps the COW-shared page writable in
    the parent (cow.c's "with mprotect() optimization" cases). The real bug in that
    function, the inverted soft-dirty test fixed after 64fe24a3e05e, breaks only
    soft-dirty tracking, which no oracle of the model watches.
    """

    name = "mprotect-ignores-pae"
    description = "mutant: mprotect's write upgrade ignores PageAnonExclusive"
    expected_oracle = "writable-shared"
    affected = "none (mutant of v6.0+ can_change_pte_writable)"
    fix = ("64fe24a3e05e mm/mprotect: try avoiding write faults for exclusive anonymous "
           "pages when changing protection")

    def can_change_pte_writable(self, vma, addr: int, pte) -> bool:
        """mm/mprotect.c:can_change_pte_writable (v7.0) with
        ``return page && PageAnon(page)`` for private mappings."""
        if not maybe_change_pte_writable(vma, pte):
            return False
        if vma.vm_flags & VM_SHARED:
            return pte.dirty                     # can_change_shared_pte_writable
        folio = self.vm_normal_page(vma, addr, pte)
        return folio is not None and folio.kind == ANON
