"""The CPU side: user loads and stores through the TLB, and the x86 fault entry.

A user access first looks in the thread's TLB; a hit is used without
looking at the page table (that is what makes TLB flushes matter). On a
miss, or a write through a read-only entry, the hardware walks the page
table atomically: a present PTE (and PMD) that permits the access is cached
and used, setting the dirty bit on a write as x86 does; anything else
raises a page fault, handled by arch/x86/mm/fault.c:do_user_addr_fault
(v7.0): first under the per-VMA lock, falling back to mmap_lock.

The walk starts from the CPU's paging-structure cache (Intel SDM vol. 3A
4.10.3, "Paging-Structure Caches"): a pmd it cached earlier is used instead
of the live pmd, R/W bit included, until a flush with freed_tables drops it
(model/tlb.py). A walk caches the pmd it reads; the MMU may also walk
speculatively at any time, which the model takes to the extreme: every walk
also caches each other present pmd of the mm not cached yet. x86 caches no
non-present entry, and a page fault drops the entries the faulting address
would use (SDM 4.10.4.1), so a stale cached table is used until a flush or
until it fails a walk.

The access itself (the load or store of the page contents) happens in the
same step as the successful lookup, like one instruction.
"""

from __future__ import annotations

from model.oracles.errors import UseAfterFree
from model.flags import (FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_INTERRUPTIBLE, FAULT_FLAG_KILLABLE,
                         FAULT_FLAG_TRIED, FAULT_FLAG_USER, FAULT_FLAG_VMA_LOCK,
                         FAULT_FLAG_WRITE, VM_FAULT_COMPLETED, VM_FAULT_ERROR, VM_FAULT_MAJOR,
                         VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_SIGSEGV, VM_READ, VM_WRITE)
from model.mm import TlbEntry
from model.pgtable import pmd_index, pte_index

FAULT_FLAG_DEFAULT = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_INTERRUPTIBLE

#: results of a user access that did not complete
SIGSEGV = "SIGSEGV"
SIGBUS = "SIGBUS"
OOM = "OOM"


def access_error(write: bool, vma) -> bool:
    """arch/x86/mm/fault.c:access_error (v7.0), data accesses."""
    if write:
        return not (vma.vm_flags & VM_WRITE)
    return not (vma.vm_flags & (VM_READ | VM_WRITE))


class CpuOps:
    """User accesses and the arch fault handler."""

    #: walks start from the paging-structure cache (False: every walk reads the live pmd,
    #: as the model did before it had one; tests use it to show what the cache adds)
    paging_structure_caches = True

    def _hw_walk(self, thread, va: int, write: bool):
        """The MMU's page walk: a TLB entry if the PTE permits the access, else None."""
        mm = thread.process.mm
        idx = pmd_index(va)
        pmd = mm.pmd[idx]
        if self.paging_structure_caches:
            pmd = self._psc_walk(thread, mm, idx, pmd)
        if pmd is None:
            return None
        table = pmd.table
        if table.freed:
            raise UseAfterFree(f"{thread.name}'s MMU walks freed page table {table.name}",
                               mm=mm.mid, va=va, table=table.name)
        pte = table.ptes[pte_index(va)]
        if pte is None or not pte.present:
            return None
        writable = pte.write and pmd.write
        if write and not writable:
            return None
        if write and not pte.dirty:
            # x86 sets the Dirty bit in the PTE (not soft-dirty) on the first write
            new = pte._copy(dirty=True)
            table.ptes[pte_index(va)] = new
            self.sched.log_at(table, "pte", va, pte, new)
            pte = new
        entry = TlbEntry(pte.folio, writable, writable and pte.dirty)
        self.sched.log_at(thread, "tlb", va, thread.tlb.get(va), entry)
        thread.tlb[va] = entry
        return entry

    def _psc_walk(self, thread, mm, idx: int, live):
        """The pmd a walk uses: the cached one, else the live one, which it caches."""
        psc = self.paging_structure_cache(thread)
        pmd = psc.get(idx)
        if pmd is None:
            pmd = live
            if pmd is not None:
                self.sched.log_at(thread, "psc", idx, None, pmd)
                psc[idx] = pmd
        elif pmd != live:
            self.sched.note("psc", f"{thread.name} walks {pmd.table.name} through its cached "
                                   f"pmd[{idx}] {pmd!r} (the pmd is {live!r})")
        self._psc_prefetch(thread, mm, psc)
        return pmd

    def _psc_prefetch(self, thread, mm, psc: dict) -> None:
        """Speculative walks: cache every present pmd of ``mm`` not cached yet."""
        for idx, pmd in enumerate(mm.pmd):
            if pmd is not None and idx not in psc:
                self.sched.log_at(thread, "psc", idx, None, pmd)
                psc[idx] = pmd

    def _psc_fault(self, thread, va: int) -> None:
        """A page fault drops the paging-structure entries the address would use."""
        psc = self.paging_structure_cache(thread)
        idx = pmd_index(va)
        if idx in psc:
            self.sched.log_at(thread, "psc", idx, psc[idx], None)
            del psc[idx]

    async def user_access(self, thread, va: int, write: bool, label: str):
        """One user load or store at ``va``: returns the folio accessed, or a signal name."""
        sched = self.sched
        mm = thread.process.mm
        await sched.point(label)
        while True:            # the CPU re-executes the access until it succeeds or signals
            entry = thread.tlb.get(va)
            if entry is None or (write and not (entry.write and entry.dirty)):
                if entry is not None:
                    # a write through a read-only entry faults and drops it; a write
                    # through a clean writable entry re-walks to set the Dirty bit
                    self.sched.log_at(thread, "tlb", va, entry, None)
                    del thread.tlb[va]
                entry = self._hw_walk(thread, va, write)
            if entry is not None:
                folio = entry.folio
                if folio.freed:
                    raise UseAfterFree(f"{thread.name} {'stores to' if write else 'loads from'} "
                                       f"freed page {folio.name} through its TLB",
                                       mm=mm.mid, va=va, pfn=folio.pfn)
                return folio
            self._psc_fault(thread, va)
            fault = await self.do_user_addr_fault(thread, va, write)
            if fault & VM_FAULT_OOM:
                return OOM
            if fault & VM_FAULT_SIGSEGV:
                return SIGSEGV
            if fault & VM_FAULT_ERROR:
                return SIGBUS
            await sched.point(label + "_retry")

    async def do_user_addr_fault(self, thread, va: int, write: bool) -> int:
        """arch/x86/mm/fault.c:do_user_addr_fault (v7.0)."""
        mm = thread.process.mm
        flags = FAULT_FLAG_DEFAULT | FAULT_FLAG_USER
        if write:
            flags |= FAULT_FLAG_WRITE
        vma = await self.lock_vma_under_rcu(mm, va)
        if vma is not None:
            if access_error(write, vma):
                self.vma_end_read(vma)
                return VM_FAULT_SIGSEGV
            fault = await self.handle_mm_fault(vma, va, flags | FAULT_FLAG_VMA_LOCK)
            if not (fault & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)):
                self.vma_end_read(vma)
            if not (fault & VM_FAULT_RETRY):
                return fault
            if fault & VM_FAULT_MAJOR:
                flags |= FAULT_FLAG_TRIED
        # lock_mmap:
        while True:
            await mm.mmap_lock.down_read(self.sched, "lock_mm_and_find_vma:mmap_read_lock")
            vma = mm.find_vma(va)
            if vma is None:
                mm.mmap_lock.up_read(self.sched)
                return VM_FAULT_SIGSEGV
            if access_error(write, vma):
                mm.mmap_lock.up_read(self.sched)
                return VM_FAULT_SIGSEGV
            fault = await self.handle_mm_fault(vma, va, flags)
            if fault & VM_FAULT_COMPLETED:
                return 0
            if fault & VM_FAULT_RETRY:
                flags |= FAULT_FLAG_TRIED
                continue
            mm.mmap_lock.up_read(self.sched)
            return fault
