"""Parallel MADV_DONTNEED: the second zap returns while the first has not flushed."""

from __future__ import annotations

from model.kernel import Kernel
from model.variants import register


@register
class ParallelZapFlushMiss(Kernel):
    """Parallel MADV_DONTNEED: the second zap returns while the first has not flushed.

    Fixed by 99baac21e458 "mm: fix MADV_[FREE|DONTNEED] TLB flush miss problem"
    (v4.13). Two threads zap the same range: the first clears the PTE under the
    ptl and batches the TLB flush in its mmu_gather; the second finds the PTE
    already clear, gathers nothing, and its tlb_finish_mmu has nothing to flush --
    MADV_DONTNEED returns to user space while a CPU still holds the old
    translation, and a load through it sees the contents the call discarded.
    The fix counts the gathers in flight on the mm (inc/dec_tlb_flush_pending in
    tlb_gather_mmu/tlb_finish_mmu) and, when another one is pending
    (mm_tlb_flush_nested), flushes the whole range whatever this gather collected:
    mm/mmu_gather.c:tlb_finish_mmu (v7.0).

    Here tlb_finish_mmu flushes only what its own gather collected, as
    mm/memory.c:tlb_finish_mmu did in v4.12. The reproducer needs the first zap
    preempted between clearing the PTE and its flush, the whole second zap, and
    then a load by a thread that cached the translation before.
    """

    name = "parallel-zap-flush-miss"
    description = "99baac21e458 reverted: a zap that finds nothing skips the nested TLB flush"
    expected_oracle = "lost-write"
    tier = "deep"
    affected = "<= v4.12; fixed in v4.13"
    fix = "99baac21e458 mm: fix MADV_[FREE|DONTNEED] TLB flush miss problem"

    async def tlb_finish_mmu(self, tlb, label: str = "tlb_finish_mmu") -> None:
        """mm/memory.c:tlb_finish_mmu (v4.12): flush what this gather collected, with no
        mm_tlb_flush_nested() check."""
        await self.tlb_flush_mmu(tlb, label)
        tlb.freed_tables = False
        self.dec_tlb_flush_pending(tlb.mm)
