"""clear_refs write-protects under mmap_lock for read: a COW copy misses a store."""

from __future__ import annotations

from model.flags import VM_SOFTDIRTY
from model.pgtable import PTRS_PER_PTE, pmd_addr_start, pmd_index
from model.variants import register
from model.variants.historical.reuse_refcount import ReuseRefcount


@register
class ClearRefsReadLock(ReuseRefcount):
    """clear_refs write-protects under mmap_lock for read: a COW copy misses a store.

    Fixed by 29a951dfb3c3 "mm: fix clear_refs_write locking" (v5.11-rc5): "Turning
    page table entries read-only requires the mmap_sem held for writing. So stop
    doing the odd games with turning things from read locks to write locks and
    back. Just get the write lock." Until then
    fs/proc/task_mmu.c:clear_refs_write (v5.10) took the write lock only to clear
    VM_SOFTDIRTY, downgraded it, and
    write-protected the PTEs under the read lock, flushing the TLB once at the
    end (inc_tlb_flush_pending ... flush_tlb_mm). Page faults run meanwhile.
    With v5.9's page_count-based COW a write fault copies any page with an extra
    reference: a CPU that still holds the old writable translation stores into
    the old page after the copy was taken and before the fault's flush, and the
    store is lost (Nadav Amit's userfaultfd-wp race, "mm/userfaultfd: fix memory
    corruption due to writeprotect", had the same shape).

    This variant is reuse-refcount (v5.9 .. v5.18 COW) with v5.10's locking in
    clear_refs; clear_soft_dirty keeps the pinned-page skip of 9348b73c2e1b
    (v5.11-rc5, variant clear-refs-pinned without it), so the locking is the only
    bug. The reproducer needs a write-fault copy (here: a R/W pin of a page the
    pipe references) between clear_refs' write-protect and its flush, and a store
    through the stale translation inside the copy's window.
    """

    name = "clear-refs-read-lock"
    description = "29a951dfb3c3 reverted (on reuse-refcount): clear_refs write-protects under the read lock"
    expected_oracle = "lost-write"
    tier = "deep"
    affected = "v5.9 .. v5.11-rc4 (with page_count-based COW)"
    fix = "29a951dfb3c3 mm: fix clear_refs_write locking"

    async def clear_refs_soft_dirty(self, mm) -> int:
        """fs/proc/task_mmu.c:clear_refs_write (v5.10), CLEAR_REFS_SOFT_DIRTY."""
        sched = self.sched
        await mm.mmap_lock.down_read(sched, "clear_refs_write:mmap_read_lock_killable")
        for vma in mm.vmas:
            if not vma.vm_flags & VM_SOFTDIRTY:
                continue
            mm.mmap_lock.up_read(sched)
            await self.mmap_write_lock(mm, "clear_refs_write:mmap_write_lock_killable")
            for v in mm.vmas:
                if v.vm_flags & VM_SOFTDIRTY:
                    sched.log_at(mm, "vma.vm_flags", v.vm_start, v.vm_flags,
                                 v.vm_flags & ~VM_SOFTDIRTY)
                    v.vm_flags &= ~VM_SOFTDIRTY
            self.mmap_write_downgrade(mm)
            break
        self.inc_tlb_flush_pending(mm)
        for vma in list(mm.vmas):                  # walk_page_range, no VMA write locks
            addr = vma.vm_start
            while addr < vma.vm_end:
                nxt = min(vma.vm_end, pmd_addr_start(addr) + PTRS_PER_PTE)
                if mm.pmd[pmd_index(addr)] is not None and \
                        await self.walk_pmd("clear_refs", vma, addr):
                    await self.clear_refs_pte_range(vma, addr, nxt)
                addr = nxt
        await self.flush_tlb_mm(mm, "clear_refs_write:flush_tlb_mm")
        self.dec_tlb_flush_pending(mm)
        mm.mmap_lock.up_read(sched)
        return 0
