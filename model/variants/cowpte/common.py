"""What the COW PTE designs share: table references, the base kernel they target, and
the table-sharing oracles.

The three designs (Chih-En Lin's RFC v2 and v4, David Hildenbrand's relaxed
proposal) share a PTE table between parent and child at fork by pointing
both pmds at it, write-protected (x86 ANDs the R/W bits of every level, so
a write anywhere under the pmd faults), and count the sharers in the table
page's refcount. Every program here has COW PTE enabled from the start
(the series' sysctl / prctl run before the first fork; MMF_COW_PTE is
inherited by children).

They were posted against v6.0 and v6.2, which fault under mmap_lock (no
per-VMA locks, v6.4+): the variants turn the per-VMA lock fault path off,
as CONFIG_PER_VMA_LOCK=n would. Everything else is the v7.0 model.

Table-sharing oracles (TableSharing), checked at quiescent points (no ptl
held and no COW PTE operation half done):
* "refcount": a table's refcount equals the pmds (of live mms) pointing at it;
* "pmd_ro": a table pointed at by several pmds is mapped read-only by each;
* "no_writable_pte": a shared table holds no writable PTE where a sharer has a private
  mapping;
* "no_exclusive_anon": a shared table maps no PageAnonExclusive page;
* "no_modify": a PTE of a table that several pmds point at changes only
  through fork's in-place accounting or by losing permissions (write,
  dirty, young): nobody installs, replaces or clears an entry others see.
Each design lists the ones its own design promises (``table_checks``).
"""

from __future__ import annotations

from contextlib import contextmanager

from model.oracles.errors import KernelBug, TableSharing
from model.flags import VM_SHARED
from model.kernel import Kernel
from model.page import ANON
from model.pgtable import PTRS_PER_PTE, Pmd, pmd_addr_start, pmd_index

ALL_TABLE_CHECKS = ("refcount", "pmd_ro", "no_writable_pte", "no_exclusive_anon", "no_modify")


class CowPteKernel(Kernel):
    """Common ground of the COW PTE designs (not a variant by itself)."""

    #: the table-sharing oracles this design promises
    table_checks: tuple[str, ...] = ALL_TABLE_CHECKS

    def __init__(self, sched):
        super().__init__(sched)
        self.cow_pte_busy = 0           # COW PTE operations half done (ghost)
        self.table_mod_allowed = 0      # inside fork's in-place accounting (ghost)

    # -- the base kernel the series target: no per-VMA locks -------------------------
    async def lock_vma_under_rcu(self, mm, addr: int):
        """CONFIG_PER_VMA_LOCK=n: faults and MADV_DONTNEED take mmap_lock (v6.0 / v6.2)."""
        return None

    # -- table references (the PTE table page's _refcount) ---------------------------
    def cow_pte_count(self, pmd) -> int:
        return pmd.table.refcount

    def pmd_get_pte(self, table) -> int:
        """page_ref_inc_return(pmd_page(*pmd))."""
        self.sched.log(table, "refcount", table.refcount, table.refcount + 1)
        table.refcount += 1
        return table.refcount

    def pmd_put_pte_unless_last(self, table) -> bool:
        """page_ref_add_unless(pmd_page(*pmd), -1, 1): drop a reference unless it is the
        last; False means the caller holds the last one."""
        if table.refcount == 1:
            return False
        self.sched.log(table, "refcount", table.refcount, table.refcount - 1)
        table.refcount -= 1
        return True

    def pmd_mkwrite_at(self, mm, addr: int) -> None:
        pmd = mm.pmd[pmd_index(addr)]
        self.set_pmd(mm, addr, Pmd(pmd.table, True))

    def mmap_assert_write_locked(self, mm) -> None:
        """include/linux/mmap_lock.h (CONFIG_DEBUG_VM, lockdep off):
        VM_BUG_ON_MM(!rwsem_is_locked(&mm->mmap_lock)) -- held by anyone, any mode."""
        lock = mm.mmap_lock
        if lock.writer is None and not lock.readers:
            raise KernelBug(f"mmap_assert_write_locked: mmap_lock of {mm.name} is not held",
                            mm=mm.mid)

    @contextmanager
    def cow_pte_operation(self):
        """A COW PTE operation whose intermediate states the table oracles must not judge."""
        self.cow_pte_busy += 1
        try:
            yield
        finally:
            self.cow_pte_busy -= 1

    @contextmanager
    def in_place_accounting(self):
        """Fork's per-PTE work on a table the child already points at (v4, relaxed)."""
        self.table_mod_allowed += 1
        try:
            yield
        finally:
            self.table_mod_allowed -= 1

    @staticmethod
    def table_range(addr: int) -> tuple[int, int]:
        start = pmd_addr_start(addr)
        return start, start + PTRS_PER_PTE

    def vmas_in_table(self, mm, addr: int) -> list:
        """The VMAs of ``mm`` overlapping the table that maps ``addr``, in address order."""
        start, end = self.table_range(addr)
        return [v for v in mm.vmas if v.vm_start < end and start < v.vm_end]

    # -- the oracles -----------------------------------------------------------------------
    def _pmds_of(self):
        """table tid -> [(mm, index, pmd)] over live mms."""
        out: dict[int, list] = {}
        for mm in self.mms:
            if mm.dead:
                continue
            for idx, pmd in enumerate(mm.pmd):
                if pmd is not None:
                    out.setdefault(pmd.table.tid, []).append((mm, idx, pmd))
        return out

    def pte_changed(self, mm, addr, table, old, new) -> None:
        super().pte_changed(mm, addr, table, old, new)
        if "no_modify" not in self.table_checks or self.table_mod_allowed:
            return
        sharers = [m for m in self.mms if not m.dead and any(
            p is not None and p.table is table for p in m.pmd)]
        if len(sharers) < 2 or _only_loses_permissions(old, new):
            return
        others = ", ".join(m.name for m in sharers if m is not mm)
        raise TableSharing(f"{mm.name} changes pte[{addr}] of {table.name} from {old!r} to "
                           f"{new!r} while {others} still map the table",
                           mm=mm.mid, va=addr, table=table.name)

    def in_table_operation(self) -> bool:
        return self.cow_pte_busy > 0

    def check_tables(self) -> None:
        checks = self.table_checks
        for table_tid, users in self._pmds_of().items():
            table = users[0][2].table
            if "refcount" in checks and table.refcount != len(users):
                raise TableSharing(f"refcount of {table.name} is {table.refcount} but "
                                   f"{len(users)} pmds point at it", table=table.name)
            if len(users) < 2:
                continue
            if "pmd_ro" in checks:
                for mm, idx, pmd in users:
                    if pmd.write:
                        raise TableSharing(f"{mm.name} maps shared table {table.name} writable "
                                           f"(pmd[{idx}])", mm=mm.mid, table=table.name)
            mm, idx, _ = users[0]
            for j, pte in enumerate(table.ptes):
                if pte is None or not pte.present or pte.special:
                    continue
                va = idx * PTRS_PER_PTE + j
                if "no_writable_pte" in checks and pte.write and \
                        _private_for_a_sharer(users, j):
                    raise TableSharing(f"shared table {table.name} holds a writable PTE at va "
                                       f"{va} ({pte!r})", va=va, table=table.name,
                                       pfn=pte.folio.pfn)
                if "no_exclusive_anon" in checks and pte.folio.kind == ANON and \
                        pte.folio.anon_exclusive:
                    raise TableSharing(f"shared table {table.name} maps {pte.folio.name}, which is "
                                       f"PageAnonExclusive, at va {va}", va=va,
                                       table=table.name, pfn=pte.folio.pfn)


def _private_for_a_sharer(users, j: int) -> bool:
    """Entry ``j`` of a shared table lies in a private mapping of one of its sharers (a
    sharer whose VMA there is gone -- munmap detaches VMAs before it zaps -- says
    nothing)."""
    for mm, idx, _ in users:
        vma = mm.find_vma(idx * PTRS_PER_PTE + j)
        if vma is not None and not vma.vm_flags & VM_SHARED:
            return True
    return False


def _only_loses_permissions(old, new) -> bool:
    """The change only clears write/dirty/young bits of the same entry."""
    if old is None or new is None or old.present != new.present:
        return False
    if not old.present:
        return old.swp == new.swp and (new.swp_exclusive <= old.swp_exclusive)
    return (old.folio is new.folio and old.special == new.special
            and new.write <= old.write and new.dirty <= old.dirty and new.young <= old.young
            and new.soft_dirty == old.soft_dirty)
