"""The kernel: global state, allocation, and page-table primitives.

``Kernel`` is upstream Linux v7.0 (the PageAnonExclusive era). Its kernel
paths live in mixins, one per kernel source file (model/memory.py is
mm/memory.c, model/gup.py is mm/gup.c, ...), named and structured like the
kernel functions they follow. A variant (model/variants/) subclasses it and
overrides the paths its design changes.

The kernel's ``__name`` functions are spelled ``_name`` here: Python mangles
method names with two leading underscores.

State lives in plain objects (model/page.py, model/pgtable.py, model/mm.py);
every change is logged to the scheduler (``self.sched.log``/``log_at``, a
``Change`` of model/changes.py) so the trace shows it and the oracles can
check it. ``self.sched`` is all the model knows of the scheduler (model/sched.py). Ghost state used only by the oracles
lives in ``self.spec`` (model/oracles/spec.py); the kernel paths never read it.
"""

from __future__ import annotations

from model.cpu import CpuOps
from model.oracles.errors import KernelBug, UseAfterFree
from model.fork import ForkOps
from model.gup import GupOps
from model.oracles.sharp import SharpOracles
from model.locks import RwSemaphore
from model.madvise import MadviseOps
from model.memory import FaultOps
from model.mm import File, MmStruct, Process, SwapSlot, Thread
from model.mmap import MmapOps
from model.mprotect import MprotectOps
from model.mremap import MremapOps
from model.page import FILE, ZERO, Folio, PageOps
from model.pgtable import Pmd, PtePointer, PteTable, pmd_index, pte_index
from model.proc import ProcOps
from model.rmap import RmapOps
from model.oracles.spec import Spec
from model.sched import Sched
from model.splice import SpliceOps
from model.swap import DISK, SwapInfo, SwapOps
from model.syscalls import Syscalls
from model.tlb import TlbOps
from model.vmscan import VmscanOps
from model.zap import ZapOps


class Kernel(PageOps, TlbOps, RmapOps, SwapOps, FaultOps, ForkOps, GupOps, ZapOps,
             MprotectOps, MremapOps, MadviseOps, ProcOps, VmscanOps, SpliceOps, CpuOps, MmapOps,
             Syscalls, SharpOracles):
    """Upstream Linux v7.0."""

    #: registry name; variants override these four
    name = "upstream"
    description = "Linux v7.0: PageAnonExclusive, FAULT_FLAG_UNSHARE, write_protect_seq"
    #: a known-bug variant names the oracle its bug breaks (None: expected clean)
    expected_oracle: str | None = None
    #: kernels this design ships in / its fix, for reports
    affected = "-"
    fix = "-"

    def __init__(self, sched: Sched):
        self.sched = sched
        self.next_pfn = 1
        self.next_table = 1
        self.next_mm = 1
        self.next_vid = 1
        self.zero_folio = Folio(0, ZERO, 0)
        self.zero_folio._refcount = 1
        self.folios: list[Folio] = []          # every folio ever allocated, by pfn order
        self.tables: list[PteTable] = []
        self.files: dict[str, File] = {}
        self.swap_slots: dict[int, SwapSlot] = {}
        self.swap_info = SwapInfo(DISK)
        self.processes: list[Process] = []
        self.mms: list[MmStruct] = []
        # tables waiting for an RCU grace period, with the tasks that may still see them
        self.rcu_deferred_tables: list[tuple[PteTable, set]] = []
        self.tlb_ubc: dict = {}          # task id -> its TlbUnmapBatch (current->tlb_ubc)
        # anon_vma->rwsem / i_mmap_rwsem, one lock for every rmap: rmap walkers hold it
        # for read, unlinking a VMA from the rmap holds it for write
        self.rmap_lock = RwSemaphore("rmap_lock")
        self.events = {}                        # user-space events (op_signal / op_wait)
        self.pending_kernel_store = {}          # task -> (target process, value) of /proc/pid/mem
        self.forking = {}                       # child pid -> the task forking it
        self.spec = Spec(self)

    # -- allocation (mm/page_alloc.c); any of these may fail when injecting --
    def alloc_folio(self, kind: str, label: str, data: int = 0) -> Folio | None:
        """folio_alloc / vma_alloc_folio: a fresh page with one reference, or None."""
        if self.sched.should_fail(label):
            return None
        folio = Folio(self.next_pfn, kind, data)
        self.next_pfn += 1
        self.folios.append(folio)
        self.sched.log(folio, "alloc", None, kind)
        return folio

    def pte_alloc_one(self, label: str, nofail: bool = False) -> PteTable | None:
        """mm/pgtable-generic.c:pte_alloc_one: a fresh, empty PTE table (``nofail``:
        __GFP_NOFAIL, never injected)."""
        if not nofail and self.sched.should_fail(label):
            return None
        table = PteTable(self.next_table)
        self.next_table += 1
        self.tables.append(table)
        self.sched.log(table, "alloc", None, "pte table")
        return table

    def pte_free(self, table: PteTable) -> None:
        table.freed = True
        self.sched.log(table, "freed", False, True)

    def free_table_rcu(self, table: PteTable) -> None:
        """mm/mmu_gather.c:tlb_remove_table (RCU table free): lockless walkers --
        GUP-fast with IRQs off, pte_offset_map's RCU read side -- may still look at the
        table, so it is freed after a grace period. Modelled conservatively: once every
        other task that was inside a kernel operation has finished that operation."""
        cur = self.sched.current
        readers = {t.tid for t in self.sched.tasks if t.in_op and t is not cur}
        if readers:
            self.rcu_deferred_tables.append((table, readers))
        else:
            self.pte_free(table)

    def rcu_quiescent(self, task) -> None:
        """``task`` left its kernel operation: a quiescent state for RCU."""
        if not self.rcu_deferred_tables:
            return
        keep = []
        for table, readers in self.rcu_deferred_tables:
            readers.discard(task.tid)
            if readers:
                keep.append((table, readers))
            else:
                self.pte_free(table)
        self.rcu_deferred_tables = keep

    # -- page table access (include/linux/pgtable.h) --------------------------
    def pmdp_get(self, mm: MmStruct, addr: int):
        return mm.pmd[pmd_index(addr)]

    def set_pmd(self, mm: MmStruct, addr: int, pmd) -> None:
        idx = pmd_index(addr)
        self.sched.log_at(mm, "pmd", idx, mm.pmd[idx], pmd)
        mm.pmd[idx] = pmd

    def pmd_bad(self, pmd) -> bool:
        """arch/x86 pmd_bad: a table pmd whose flags are not _KERNPG_TABLE -- which includes
        _PAGE_RW, so a write-protected table pmd is "bad" (designs that share tables by
        write-protecting the pmd relax this)."""
        return not pmd.write

    def pmd_clear_bad(self, mm: MmStruct, addr: int) -> None:
        """mm/pgtable-generic.c:pmd_clear_bad (v7.0): pmd_ERROR, then clear the pmd. The
        table and everything it maps are lost to this mm: reported as a kernel bug."""
        pmd = mm.pmd[pmd_index(addr)]
        self.set_pmd(mm, addr, None)
        raise KernelBug(f"pmd_clear_bad: bad pmd {pmd!r} in {mm.name} at va {addr} (cleared)",
                        mm=mm.mid, va=addr, table=pmd.table.name)

    def pte_offset_map(self, mm: MmStruct, addr: int) -> PtePointer | None:
        """mm/pgtable-generic.c:__pte_offset_map (v7.0): the PTE slot, or None when no table
        is installed; a bad pmd is cleared (pmd_clear_bad)."""
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None:
            return None
        if self.pmd_bad(pmd):
            self.pmd_clear_bad(mm, addr)
        if pmd.table.freed:
            raise UseAfterFree(f"{mm.name} walks freed page table {pmd.table.name}",
                               mm=mm.mid, va=addr, table=pmd.table.name)
        return PtePointer(pmd.table, pte_index(addr))

    async def pte_offset_map_rw_nolock(self, mm: MmStruct, addr: int) -> PtePointer | None:
        """mm/pgtable-generic.c:pte_offset_map_rw_nolock (v7.0): the PTE slot for a caller
        that takes the ptl itself and then changes the table (move_ptes' new table)."""
        return self.pte_offset_map(mm, addr)

    async def pte_offset_map_lock(self, mm: MmStruct, addr: int, label: str,
                                  readonly: bool = False):
        """mm/pgtable-generic.c:__pte_offset_map_lock (v7.0): map the table and take its
        ptl, re-checking that the pmd is unchanged (pmd_same); None once no table is
        there. ``readonly``: the caller only reads the PTEs (GUP's follow_page_pte)."""
        while True:
            pmdval = mm.pmd[pmd_index(addr)]
            ptep = self.pte_offset_map(mm, addr)
            if ptep is None:
                return None
            await ptep.table.ptl.lock(self.sched, label)
            if ptep.table.freed:     # the spinlock lives in the table's struct ptdesc
                raise UseAfterFree(f"{mm.name} takes the ptl of freed page table "
                                   f"{ptep.table.name}", mm=mm.mid, va=addr,
                                   table=ptep.table.name)
            if mm.pmd[pmd_index(addr)] == pmdval:
                return ptep
            ptep.table.ptl.unlock(self.sched)

    def pte_unmap_unlock(self, ptep: PtePointer) -> None:
        ptep.table.ptl.unlock(self.sched)

    def ptep_get(self, ptep: PtePointer):
        if ptep.table.freed:
            raise UseAfterFree(f"access to freed page table {ptep.table.name}",
                               table=ptep.table.name)
        return ptep.table.ptes[ptep.idx]

    def set_pte_at(self, mm: MmStruct, addr: int, ptep: PtePointer, pte) -> None:
        table = ptep.table
        if table.freed:
            raise UseAfterFree(f"set_pte_at on freed page table {table.name}",
                               table=table.name, va=addr)
        old = table.ptes[ptep.idx]
        table.ptes[ptep.idx] = pte
        self.sched.log_at(table, "pte", addr, old, pte)
        self.pte_changed(mm, addr, table, old, pte)

    def pte_changed(self, mm, addr, table, old, new) -> None:
        """Hook for oracles that watch PTE writes (the fork window; COW PTE table oracles,
        which extend it)."""
        self.fork_window_pte_changed(mm, addr, old, new)

    def ptep_get_and_clear(self, mm: MmStruct, addr: int, ptep: PtePointer):
        old = self.ptep_get(ptep)
        self.set_pte_at(mm, addr, ptep, None)
        return old

    async def ptep_clear_flush(self, vma, addr: int, ptep: PtePointer, label: str):
        """mm/pgtable-generic.c:ptep_clear_flush: clear, then flush the old translation."""
        old = self.ptep_get_and_clear(vma.vm_mm, addr, ptep)
        if old is not None and old.present:
            await self.flush_tlb_page(vma, addr, label)
        return old

    async def pte_alloc(self, mm: MmStruct, addr: int, label: str) -> bool:
        """pte_alloc / __pte_alloc + pmd_install (mm/memory.c v7.0). True on -ENOMEM."""
        if mm.pmd[pmd_index(addr)] is not None:
            return False
        new = self.pte_alloc_one(label + ":pte_alloc_one")
        if new is None:
            return True
        await self.pmd_install(mm, addr, new, label)
        return False

    async def pmd_install(self, mm: MmStruct, addr: int, table: PteTable, label: str) -> None:
        """mm/memory.c:pmd_install (v7.0): populate the pmd unless someone beat us."""
        await mm.page_table_lock.lock(self.sched, label + ":pmd_lock")
        if mm.pmd[pmd_index(addr)] is None:
            self.set_pmd(mm, addr, Pmd(table, True))
            table = None
        mm.page_table_lock.unlock(self.sched)
        if table is not None:
            self.pte_free(table)

    async def walk_pmd(self, walker: str, vma, addr: int) -> bool:
        """A page-table walker that may modify PTEs ("mprotect", "clear_refs", "rmap") is
        about to walk the table at ``addr``; False skips it. Upstream tables are private;
        designs that share tables break COW here (or not)."""
        return True

    def vm_normal_page(self, vma, addr: int, pte):
        """mm/memory.c:vm_normal_page (v7.0): None for the special zero-page PTE."""
        if pte.special:
            return None
        folio = pte.folio
        if folio.freed:
            raise UseAfterFree(f"page table of {vma.vm_mm.name} maps freed page {folio.name}",
                               mm=vma.vm_mm.mid, va=addr, pfn=folio.pfn)
        return folio

    def is_zero_pfn(self, pte) -> bool:
        return pte.present and pte.special

    # -- setup: the initial process, its file and mappings -------------------
    def new_mm(self) -> MmStruct:
        mm = MmStruct(self.next_mm)
        self.next_mm += 1
        self.mms.append(mm)
        return mm

    def create_file(self, name: str, npages: int) -> File:
        """A memfd with ``npages`` pages in the page cache, each with its own contents."""
        f = File(name)
        for i in range(npages):
            token = self.spec.new_token(None, None, "file")
            folio = Folio(self.next_pfn, FILE, token)
            self.next_pfn += 1
            folio.mapping = f
            folio.index = i
            self.folios.append(folio)
            f.pages.append(folio)
        self.files[name] = f
        return f

    def create_process(self, parent: Process | None, mm: MmStruct, pid: int = 0) -> Process:
        proc = Process(pid, mm, parent)
        mm.owner = proc
        self.processes.append(proc)
        return proc

    def create_thread(self, proc: Process, name: str) -> Thread:
        thread = Thread(len(proc.threads), proc, name)
        proc.threads.append(thread)
        proc.live_threads += 1
        proc.mm.threads.append(thread)
        proc.mm.mm_users += 1
        return thread

    def bug(self, what: str, **objects) -> None:
        raise KernelBug(what, **objects)
