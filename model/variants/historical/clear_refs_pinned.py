"""The historical variant clear-refs-pinned: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/clear-refs-pinned.diff.
"""

from __future__ import annotations

from model.pgtable import pte_clear_soft_dirty, pte_wrprotect
from model.variants import register
from model.variants.historical.reuse_refcount import ReuseRefcount


@register
class ClearRefsPinned(ReuseRefcount):
    """clear_refs (soft-dirty) write-protects pinned pages; the next write COWs them away.

    Fixed by 9348b73c2e1b "mm: don't play games with pinned pages in
    clear_page_refs" (v5.11-rc5, with 29a951dfb3c3 "mm: fix clear_refs_write
    locking"): clear_soft_dirty skips a writable PTE of a maybe-pinned page in a COW
    mapping of an mm that has pinned (pte_is_pinned). Before it,
    fs/proc/task_mmu.c:clear_soft_dirty (v5.10) write-protected and cleaned every
    present PTE: ``ptent = pte_wrprotect(old_pte); ptent =
    pte_clear_soft_dirty(ptent);``.

    The missing skip is harmful only with page_count-based reuse: on v7.0's
    do_wp_page a pinned page is PageAnonExclusive and reused. So this variant is
    reuse-refcount (v5.9 .. v5.18, which v5.9 .. v5.10 kernels had) with v5.10's
    clear_soft_dirty; reuse-refcount alone stays clean on its reproducer.
    """

    name = "clear-refs-pinned"
    description = "9348b73c2e1b reverted (on reuse-refcount): clear_refs wrprotects pinned pages"
    expected_oracle = "pin-coherence"
    affected = "v5.9 .. v5.11-rc4"
    fix = "9348b73c2e1b mm: don't play games with pinned pages in clear_page_refs"

    def clear_soft_dirty(self, vma, addr: int, ptep) -> None:
        """fs/proc/task_mmu.c:clear_soft_dirty (v5.10): no pte_is_pinned() skip."""
        pte = self.ptep_get(ptep)
        if pte is None:
            return
        if pte.present:
            new = pte_clear_soft_dirty(pte_wrprotect(pte))
        else:
            new = pte._copy(soft_dirty=False)
        if new != pte:
            self.set_pte_at(vma.vm_mm, addr, ptep, new)
