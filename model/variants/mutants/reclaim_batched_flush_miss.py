"""Reclaim's deferred TLB flush is invisible to a parallel MADV_DONTNEED."""

from __future__ import annotations

from model.kernel import Kernel
from model.variants import register


@register
class ReclaimBatchedFlushMiss(Kernel):
    """Reclaim's deferred TLB flush is invisible to a parallel MADV_DONTNEED.

    Fixed by 3ea277194daa "mm, mprotect: flush TLB if potentially racing with a
    parallel reclaim leaving stale TLB entries" (v4.13). Reclaim clears a PTE
    with try_to_unmap_one and defers the TLB flush (TTU_BATCH_FLUSH, batched
    across pages until try_to_unmap_flush). "Nadav Amit identified a theoretical
    race between page reclaim and mprotect due to TLB flushes being batched
    outside of the PTL being held [...] The same type of race exists [...] for
    operations that can leave an old TLB entry behind such as munmap, mremap and
    madvise": a zap that runs meanwhile finds the PTE already non-present (a swap
    entry), so it flushes nothing and returns while another CPU still maps the
    old page. The fix records the pending batch in the mm (tlb_flush_batched) and
    has every such walker call flush_tlb_batched_pending() under the ptl:
    mm/rmap.c:flush_tlb_batched_pending (v7.0), called from zap_pte_range and
    change_pte_range.

    Here flush_tlb_batched_pending does nothing, as v4.12 had no such call. The
    reproducer needs reclaim preempted after unmapping the page and before its
    flush, a whole MADV_DONTNEED of the page, and then a load by a thread that
    cached the translation before.
    """

    name = "reclaim-batched-flush-miss"
    description = ("3ea277194daa reverted: zap and mprotect ignore reclaim's pending "
                   "batched TLB flush")
    expected_oracle = "lost-write"
    tier = "deep"
    affected = "v4.3 (batched unmap flushes, 72b252aed506) .. v4.12; fixed in v4.13"
    fix = ("3ea277194daa mm, mprotect: flush TLB if potentially racing with a parallel "
           "reclaim leaving stale TLB entries")

    async def flush_tlb_batched_pending(self, mm) -> None:
        """v4.12 had no flush_tlb_batched_pending(): the walker flushes nothing for PTEs
        reclaim cleared."""
        return
