"""Page tables freed right after the TLB flush, with no RCU grace period."""

from __future__ import annotations

from model.kernel import Kernel
from model.variants import register


@register
class TableFreeNoRcu(Kernel):
    """Page tables freed right after the TLB flush, with no RCU grace period.

    MUTANT of a37259732a7d "x86/mm: Make MMU_GATHER_RCU_TABLE_FREE
    unconditional" (v6.15). Lockless walkers read a pmd and then the PTE table
    it points to with nothing that pins the table: pte_offset_map() under
    rcu_read_lock(), which __pte_offset_map_lock() holds while it takes the
    table's ptl and rechecks the pmd, and GUP-fast with IRQs off. So the
    mmu_gather frees tables after the TLB flush and an RCU grace period:
    mm/mmu_gather.c:tlb_remove_table (v7.0). Bare-metal x86 used to free them
    right after the flush, whose IPI waited for every CPU; a37259732a7d made
    RCU freeing unconditional for flushes that interrupt nobody (INVLPGB),
    and PT_RECLAIM -- empty tables freed by MADV_DONTNEED under mmap_lock
    read, while faults and GUP walk them (v6.14) -- selects it.

    Here a table goes back to the allocator as soon as its gather is flushed
    (tlb_flush_mmu -> pte_free), with PT_RECLAIM on and a flush that, like
    INVLPGB, waits for nobody. A walker that read the pmd before MADV_DONTNEED
    unhooked the table then takes the ptl of a freed table (use-after-free).
    The reproducer needs the walker preempted between reading the pmd and
    taking the ptl, and the whole MADV_DONTNEED of the table's range -- the
    zap, the empty table's pmd cleared, the flush -- run inside that window.
    """

    name = "table-free-no-rcu"
    description = ("mutant: page tables freed right after the TLB flush, without waiting "
                   "for an RCU grace period")
    expected_oracle = "use-after-free"
    tier = "deep"
    affected = "none (mutant of a37259732a7d, v6.15: PT_RECLAIM without RCU table freeing)"
    fix = "a37259732a7d x86/mm: Make MMU_GATHER_RCU_TABLE_FREE unconditional"

    def free_table_rcu(self, table) -> None:
        """mm/mmu_gather.c:__tlb_remove_table_free without CONFIG_MMU_GATHER_RCU_TABLE_FREE
        (v6.14, bare-metal x86): free the table now, whoever may be walking it."""
        self.pte_free(table)
