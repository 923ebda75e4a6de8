"""mm_struct, vm_area_struct, processes, threads, files and swap.

Mirrors include/linux/mm_types.h (v6.x) at the granularity the model needs:
an mm has its VMAs (sorted, never overlapping), its PMD level (one entry per
PTE table), mmap_lock, write_protect_seq, MMF_HAS_PINNED and the pending
TLB flush count; a VMA has vm_flags, its file and pgoff, whether it has an
anon_vma, and its per-VMA lock (v6.4+: vm_lock + vm_lock_seq).

Processes and threads stand for task_struct: a process owns an mm, its
GUP pins (held, as by a driver, through the process's file descriptors),
and a pipe for vmsplice; a thread runs on its own CPU and owns that CPU's
TLB.
"""

from __future__ import annotations

from model.flags import VM_MAYSHARE, VM_SHARED, VM_SOFTDIRTY, VM_WRITE
from model.locks import RwSemaphore, SeqCount, SpinLock
from model.pgtable import PTRS_PER_PMD


class VmArea:
    """struct vm_area_struct; [vm_start, vm_end) in pages."""

    __slots__ = ("vm_mm", "vm_start", "vm_end", "vm_flags", "vm_file", "vm_pgoff",
                 "anon_vma", "vm_lock", "vm_lock_seq", "vid")

    def __init__(self, mm, start, end, flags, file=None, pgoff=0, vid=0):
        self.vm_mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_flags = flags
        self.vm_file = file
        self.vm_pgoff = pgoff
        self.anon_vma = False        # anon_vma_prepare() ran: the VMA has anon pages
        self.vid = vid
        self.vm_lock = RwSemaphore(f"vm_lock(mm{mm.mid}:{start}-{end})")
        self.vm_lock_seq = -1

    def linear_page_index(self, addr: int) -> int:
        return self.vm_pgoff + (addr - self.vm_start)

    def is_shared(self) -> bool:
        return bool(self.vm_flags & VM_SHARED)

    def __repr__(self) -> str:
        return f"vma({self.vm_start}-{self.vm_end})"


def vma_is_anonymous(vma: VmArea) -> bool:
    return vma.vm_file is None


def vma_soft_dirty_enabled(vma: VmArea) -> bool:
    """mm/internal.h:vma_soft_dirty_enabled (v6.x): tracking is on once clear_refs
    cleared VM_SOFTDIRTY."""
    return not (vma.vm_flags & VM_SOFTDIRTY)


class MmStruct:
    """struct mm_struct."""

    __slots__ = ("mid", "owner", "vmas", "pmd", "mmap_lock", "write_protect_seq",
                 "page_table_lock", "has_pinned", "tlb_flush_pending", "tlb_flush_batched",
                 "mm_lock_seq", "mm_users", "dead", "threads", "fork_in_progress",
                 "detached_vmas")

    def __init__(self, mid: int):
        self.mid = mid
        self.owner = None
        self.vmas: list[VmArea] = []
        self.pmd = [None] * PTRS_PER_PMD
        self.mmap_lock = RwSemaphore(f"mmap_lock(mm{mid})")
        self.write_protect_seq = SeqCount(f"write_protect_seq(mm{mid})")
        self.page_table_lock = SpinLock(f"page_table_lock(mm{mid})")   # pmd_lock()
        self.has_pinned = False      # MMF_HAS_PINNED
        self.tlb_flush_pending = 0   # mm->tlb_flush_pending
        self.tlb_flush_batched = False   # reclaim cleared PTEs and deferred the flush
        self.mm_lock_seq = 0         # mm->mm_lock_seq (per-VMA locking, v6.4+)
        self.mm_users = 0
        self.dead = False            # exit_mmap() ran
        self.threads = []            # threads running on this mm (their CPUs' TLBs)
        self.fork_in_progress = 0    # dup_mmap() of this mm running (for the oracles)
        self.detached_vmas = []      # unmapped but still linked in the rmap until free_pgtables

    @property
    def name(self) -> str:
        return f"mm{self.mid}"

    def find_vma(self, addr: int) -> VmArea | None:
        """The VMA containing addr (vma_lookup)."""
        for vma in self.vmas:
            if vma.vm_start <= addr < vma.vm_end:
                return vma
        return None

    def __repr__(self) -> str:
        return self.name


class TlbEntry:
    """A cached translation of one CPU: the page, whether writes may use it, and the
    cached Dirty bit (x86: a store through an entry whose Dirty bit is clear re-walks
    the page table to set it, and faults if the PTE no longer permits the write)."""

    __slots__ = ("folio", "write", "dirty")

    def __init__(self, folio, write, dirty=False):
        self.folio = folio
        self.write = write
        self.dirty = dirty

    def __repr__(self) -> str:
        return f"{self.folio.name}{':W' if self.write else ''}{'D' if self.dirty else ''}"


class Thread:
    """A user thread on its own CPU: owns that CPU's TLB for its mm."""

    __slots__ = ("tid", "process", "tlb", "name")

    def __init__(self, tid: int, process, name: str):
        self.tid = tid
        self.process = process
        self.tlb: dict[int, TlbEntry] = {}
        self.name = name

    def __repr__(self) -> str:
        return self.name


class Process:
    """A process: its mm, its GUP pins (slots), its vmsplice pipe, its place in the tree."""

    __slots__ = ("pid", "mm", "parent", "threads", "pins", "pinning", "pipe", "exiting",
                 "live_threads", "forked_at", "fork_done_at")

    def __init__(self, pid: int, mm: MmStruct, parent=None):
        self.pid = pid
        self.mm = mm
        self.parent = parent
        self.threads: list[Thread] = []
        self.pins: dict[int, object] = {}   # slot -> Pin
        self.pinning: set[int] = set()      # slots with a pin request in flight
        self.pipe: list = []                # vmsplice'd page references, FIFO
        self.exiting = False
        self.live_threads = 0
        self.forked_at = None     # step index at which the creating fork began
        self.fork_done_at = None  # step index at which it completed

    @property
    def name(self) -> str:
        return f"P{self.pid}"

    def __repr__(self) -> str:
        return self.name


class File:
    """A file and its page cache (memfd/tmpfile); pages never leave the cache."""

    __slots__ = ("name", "pages")

    def __init__(self, name: str):
        self.name = name
        self.pages = []

    def __repr__(self) -> str:
        return self.name


class SwapSlot:
    """One swap slot: swap_map count, SWAP_HAS_CACHE, and the data written by pageout."""

    __slots__ = ("slot", "count", "has_cache", "data", "folio")

    def __init__(self, slot: int):
        self.slot = slot
        self.count = 0            # references from swap PTEs (swap_map without the cache bit)
        self.has_cache = False    # SWAP_HAS_CACHE
        self.data = None          # contents on the swap device, set by pageout
        self.folio = None         # the swap cache folio, if any

    @property
    def name(self) -> str:
        return f"swp{self.slot}"

    def __repr__(self) -> str:
        return self.name


def vma_writable(vma: VmArea) -> bool:
    return bool(vma.vm_flags & VM_WRITE)


def vma_maybe_shared(vma: VmArea) -> bool:
    return bool(vma.vm_flags & VM_MAYSHARE)
