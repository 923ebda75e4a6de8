"""get_user_pages: the slow path, GUP-fast, and pins.

Mirrors mm/gup.c and the GUP parts of mm/internal.h (v7.0), one page per
call (nr_pages = 1). Rules that matter:

* slow GUP runs under mmap_lock (read) and the ptl: follow_page_pte refuses
  a R/O PTE for FOLL_WRITE (unless can_follow_write_pte) and returns
  -EMLINK when a R/O pin must unshare first (gup_must_unshare); both go
  through faultin_page, which triggers a write or FAULT_FLAG_UNSHARE fault;
* GUP-fast takes no lock: B1 read the PTE, B3 grab/pin the page, B4
  re-check the PMD and PTE, B5 back off if a R/O pin must unshare -- each a
  separate scheduling point -- inside a write_protect_seq read section for
  FOLL_PIN (a concurrent fork makes it unpin and fall back);
* a FOLL_PIN on a small folio adds GUP_PIN_COUNTING_BIAS to the refcount;
  the zero page is never pinned.

``Pin`` is what a driver keeps for a pinned page (cow.c's gup_test
module, io_uring fixed buffers): it belongs to a process and is released
by unpin or when the process's files are closed at exit.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug, UseAfterFree
from model.flags import (EAGAIN, EBUSY, EEXIST, EFAULT, EMLINK, ENOMEM, FAULT_FLAG_ALLOW_RETRY,
                         FAULT_FLAG_KILLABLE, FAULT_FLAG_REMOTE, FAULT_FLAG_TRIED,
                         FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, FOLL_ANON, FOLL_FORCE, FOLL_GET,
                         FOLL_LONGTERM, FOLL_NOFAULT, FOLL_PIN, FOLL_REMOTE, FOLL_TOUCH,
                         FOLL_TRIED, FOLL_UNLOCKABLE, FOLL_WRITE, VM_FAULT_COMPLETED,
                         VM_FAULT_ERROR, VM_FAULT_OOM, VM_FAULT_RETRY, VM_MAYREAD, VM_MAYSHARE,
                         VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE, is_cow_mapping)
from model.memory import pte_needs_soft_dirty_wp
from model.page import ANON, GUP_PIN_COUNTING_BIAS, ZERO
from model.pgtable import pmd_index, pte_index


class Pin:
    """A driver's pin (or FOLL_GET reference) on one page, taken through ``process``'s mm."""

    __slots__ = ("process", "slot", "va", "folio", "gup_flags", "coherent", "associated",
                 "shared")

    def __init__(self, process, slot, va, folio, gup_flags, coherent):
        self.process = process
        self.slot = slot
        self.va = va
        self.folio = folio
        self.gup_flags = gup_flags
        self.coherent = coherent       # the pin promises to stay coherent with the page table
        self.associated = True         # the process has not itself unmapped the address
        self.shared = False            # ghost: pinned through a MAP_SHARED mapping

    @property
    def write(self) -> bool:
        return bool(self.gup_flags & FOLL_WRITE)

    def __repr__(self) -> str:
        return f"pin#{self.slot}({self.folio.name})"


class _Locked:
    """The ``int *locked`` of the GUP API."""

    __slots__ = ("value",)

    def __init__(self, value: int):
        self.value = value


def gup_must_unshare(vma, flags: int, folio) -> bool:
    """mm/internal.h:gup_must_unshare (v7.0)."""
    if (flags & (FOLL_WRITE | FOLL_PIN)) != FOLL_PIN:
        return False
    if folio.kind != ANON:
        if not (flags & FOLL_LONGTERM):
            return False
        if vma is None:
            return True
        return is_cow_mapping(vma.vm_flags)
    return not folio.anon_exclusive


def can_follow_write_common(folio, vma, flags: int) -> bool:
    """mm/gup.c:can_follow_write_common (v7.0)."""
    if not (flags & FOLL_FORCE):
        return False
    if vma.vm_flags & (VM_MAYSHARE | VM_SHARED):
        return False
    if not (vma.vm_flags & VM_MAYWRITE):
        return False
    if vma.vm_flags & VM_WRITE:
        return False
    return folio is not None and folio.kind == ANON and folio.anon_exclusive


def can_follow_write_pte(pte, folio, vma, flags: int) -> bool:
    """mm/gup.c:can_follow_write_pte (v7.0): FOLL_FORCE may write a R/O PTE only if it
    maps an exclusive anon page and no write fault is needed for other reasons."""
    if pte.write:
        return True
    if not can_follow_write_common(folio, vma, flags):
        return False
    return not pte_needs_soft_dirty_wp(vma, pte)


def check_vma_flags(vma, gup_flags: int) -> int:
    """mm/gup.c:check_vma_flags (v7.0)."""
    vm_flags = vma.vm_flags
    write = gup_flags & FOLL_WRITE
    if (gup_flags & FOLL_ANON) and vma.vm_file is not None:
        return -EFAULT
    if write:
        # shmem needs no dirty tracking: writable_file_mapping_allowed() is true
        if not (vm_flags & VM_WRITE):
            if not (gup_flags & FOLL_FORCE):
                return -EFAULT
            if not is_cow_mapping(vm_flags):
                return -EFAULT
    elif not (vm_flags & VM_READ):
        if not (gup_flags & FOLL_FORCE):
            return -EFAULT
        if not (vm_flags & VM_MAYREAD):
            return -EFAULT
    return 0


def vm_fault_to_errno(vm_fault: int, foll_flags: int) -> int:
    """include/linux/mm.h:vm_fault_to_errno (v7.0)."""
    if vm_fault & VM_FAULT_OOM:
        return -ENOMEM
    if vm_fault & VM_FAULT_ERROR:
        return -EFAULT
    return 0


class GupOps:
    """mm/gup.c."""

    # -- grabbing and releasing -----------------------------------------------
    def try_grab_folio(self, folio, flags: int) -> int:
        """mm/gup.c:try_grab_folio (v7.0): the slow path's grab, with a stable reference."""
        if folio.kind != ZERO and folio._refcount <= 0:
            return -ENOMEM
        if flags & FOLL_GET:
            self.folio_ref_add(folio, 1)
        elif flags & FOLL_PIN:
            if folio.kind == ZERO:
                return 0
            self.folio_ref_add(folio, GUP_PIN_COUNTING_BIAS)
        return 0

    def try_grab_folio_fast(self, folio, flags: int):
        """mm/gup.c:try_grab_folio_fast (v7.0): add-unless-zero, the folio may be freeing."""
        if flags & FOLL_GET:
            return folio if self.folio_try_get(folio) else None
        if folio.kind == ZERO:
            return folio
        if not self.folio_try_get(folio):
            return None
        self.folio_ref_add(folio, GUP_PIN_COUNTING_BIAS - 1)
        return folio

    def gup_put_folio(self, folio, flags: int) -> None:
        """mm/gup.c:gup_put_folio (v7.0)."""
        refs = 1
        if flags & FOLL_PIN:
            if folio.kind == ZERO:
                return
            refs = GUP_PIN_COUNTING_BIAS
        self.folio_put_refs(folio, refs)

    def sanity_check_pinned_pages(self, folios) -> None:
        """mm/gup.c:sanity_check_pinned_pages (v7.0): pinned anon pages stay exclusive."""
        for folio in folios:
            if folio.kind == ANON and not folio.anon_exclusive:
                raise KernelBug(f"pinned anon page {folio.name} is not PageAnonExclusive",
                                pfn=folio.pfn)

    def unpin_user_page(self, folio) -> None:
        """mm/gup.c:unpin_user_page (v7.0)."""
        self.sanity_check_pinned_pages([folio])
        self.gup_put_folio(folio, FOLL_PIN)

    def mm_set_has_pinned_flag(self, mm) -> None:
        if not mm.has_pinned:
            mm.has_pinned = True
            self.sched.log(mm, "MMF_HAS_PINNED", False, True)

    # -- slow path -------------------------------------------------------------
    async def follow_page_pte(self, vma, address: int, flags: int):
        """mm/gup.c:follow_page_pte (v7.0): a folio, None (fault needed) or -errno."""
        mm = vma.vm_mm
        if self.pmdp_get(mm, address) is None:
            return None                                   # no_page_table
        ptep = await self.pte_offset_map_lock(mm, address, "follow_page_pte:pte_offset_map_lock",
                                              readonly=True)
        if ptep is None:
            return None
        pte = self.ptep_get(ptep)
        if pte is None or not pte.present:
            self.pte_unmap_unlock(ptep)
            return None
        folio = self.vm_normal_page(vma, address, pte)
        if (flags & FOLL_WRITE) and not can_follow_write_pte(pte, folio, vma, flags):
            self.pte_unmap_unlock(ptep)
            return None
        if folio is None:
            folio = self.zero_folio                       # is_zero_pfn
        page = self.follow_page_grab(vma, address, ptep, pte, folio, flags)
        self.pte_unmap_unlock(ptep)
        return page

    def gup_must_unshare(self, vma, flags: int, folio) -> bool:
        """The module's gup_must_unshare, as a method so that a design can change it."""
        return gup_must_unshare(vma, flags, folio)

    def follow_page_grab(self, vma, address, ptep, pte, folio, flags):
        """The part of follow_page_pte after the page is known, under the ptl."""
        if not pte.write and self.gup_must_unshare(vma, flags, folio):
            return -EMLINK
        if (flags & FOLL_PIN) and folio.kind == ANON and not folio.anon_exclusive:
            raise KernelBug(f"follow_page_pte: FOLL_PIN of {folio.name} which is not "
                            "PageAnonExclusive", pfn=folio.pfn, va=address)
        ret = self.try_grab_folio(folio, flags)
        if ret:
            return ret
        if flags & FOLL_TOUCH:
            if (flags & FOLL_WRITE) and not pte.dirty and not folio.dirty:
                self.folio_mark_dirty(folio)
        return folio

    async def faultin_page(self, vma, address: int, flags: int, unshare: bool,
                           locked: _Locked) -> int:
        """mm/gup.c:faultin_page (v7.0)."""
        if flags & FOLL_NOFAULT:
            return -EFAULT
        fault_flags = 0
        if flags & FOLL_WRITE:
            fault_flags |= FAULT_FLAG_WRITE
        if flags & FOLL_REMOTE:
            fault_flags |= FAULT_FLAG_REMOTE
        if flags & FOLL_UNLOCKABLE:
            fault_flags |= FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE
        if flags & FOLL_TRIED:
            fault_flags |= FAULT_FLAG_TRIED
        if unshare:
            fault_flags |= FAULT_FLAG_UNSHARE
            if fault_flags & FAULT_FLAG_WRITE:
                raise KernelBug("faultin_page: FAULT_FLAG_WRITE and FAULT_FLAG_UNSHARE together",
                                va=address)
        ret = await self.handle_mm_fault(vma, address, fault_flags)
        if ret & VM_FAULT_COMPLETED:
            locked.value = 0
            return -EAGAIN
        if ret & VM_FAULT_ERROR:
            return vm_fault_to_errno(ret, flags)
        if ret & VM_FAULT_RETRY:
            locked.value = 0
            return -EBUSY
        return 0

    async def _get_user_pages(self, mm, start: int, gup_flags: int, locked: _Locked):
        """mm/gup.c:__get_user_pages (v7.0) for one page: a folio, 0 (retry) or -errno."""
        vma = mm.find_vma(start)
        if vma is None:
            return -EFAULT
        ret = check_vma_flags(vma, gup_flags)
        if ret:
            return ret
        while True:
            page = await self.follow_page_pte(vma, start, gup_flags)
            if page is None or page == -EMLINK:
                ret = await self.faultin_page(vma, start, gup_flags, page == -EMLINK, locked)
                if ret == 0:
                    await self.sched.point("__get_user_pages:retry")
                    continue
                if ret in (-EBUSY, -EAGAIN):
                    return 0
                return ret
            if page == -EEXIST:
                return -EEXIST
            return page

    async def get_user_pages_locked(self, mm, start: int, flags: int, locked: _Locked):
        """mm/gup.c:__get_user_pages_locked (v7.0) for one page."""
        sched = self.sched
        must_unlock = False
        if not locked.value:
            await mm.mmap_lock.down_read(sched, "__get_user_pages_locked:mmap_read_lock")
            must_unlock = True
            locked.value = 1
        if flags & FOLL_PIN:
            self.mm_set_has_pinned_flag(mm)
        if not (flags & FOLL_PIN):
            flags |= FOLL_GET
        ret = await self._get_user_pages(mm, start, flags, locked)
        done = ret
        if (flags & FOLL_UNLOCKABLE) and not locked.value:
            # VM_FAULT_RETRY dropped mmap_lock: retake it and retry with FOLL_TRIED
            must_unlock = True
            while True:
                await mm.mmap_lock.down_read(sched, "__get_user_pages_locked:mmap_read_lock(retry)")
                locked.value = 1
                ret = await self._get_user_pages(mm, start, flags | FOLL_TRIED, locked)
                if not locked.value:
                    continue
                done = ret
                break
        if must_unlock and locked.value:
            mm.mmap_lock.up_read(sched)
            locked.value = 0
        if done == 0:
            return -EFAULT
        return done

    async def get_user_pages_remote(self, mm, start: int, gup_flags: int):
        """mm/gup.c:get_user_pages_remote (v7.0), caller holds mmap_lock, locked == NULL."""
        return await self.get_user_pages_locked(mm, start, gup_flags | FOLL_TOUCH | FOLL_REMOTE,
                                                _Locked(1))

    async def pin_user_pages(self, mm, start: int, gup_flags: int):
        """mm/gup.c:pin_user_pages (v7.0): caller holds mmap_lock for read."""
        return await self.get_user_pages_locked(mm, start, gup_flags | FOLL_PIN, _Locked(1))

    # -- GUP-fast ----------------------------------------------------------------
    async def gup_fast_pmd_range(self, mm, addr: int, flags: int):
        """mm/gup.c:gup_fast_pmd_range (v7.0): read the pmd once, walk its table."""
        await self.sched.point("gup_fast_pte_range:ptep_get_lockless")   # B1
        pmd = mm.pmd[pmd_index(addr)]
        if pmd is None:
            return None
        return await self.gup_fast_pte_range(mm, addr, pmd, flags)

    async def gup_fast_pte_range(self, mm, addr: int, pmd, flags: int):
        """mm/gup.c:gup_fast_pte_range (v7.0) for one PTE of ``pmd``'s table: the grabbed
        folio or None."""
        sched = self.sched
        table = pmd.table
        if table.freed:
            raise UseAfterFree(f"GUP-fast walks freed page table {table.name}",
                               mm=mm.mid, va=addr, table=table.name)
        pte = table.ptes[pte_index(addr)]
        if pte is None or not pte.present:
            return None
        if (flags & FOLL_WRITE) and not pte.write:                       # B2
            return None
        if pte.special:
            return None
        await sched.point("gup_fast_pte_range:try_grab_folio_fast")      # B3
        folio = self.try_grab_folio_fast(pte.folio, flags)
        if folio is None:
            return None
        await sched.point("gup_fast_pte_range:recheck_pmd_pte")          # B4
        cur = mm.pmd[pmd_index(addr)]
        if cur != pmd or table.ptes[pte_index(addr)] != pte:
            self.gup_put_folio(folio, flags)
            return None
        # gup_fast_folio_allowed: anon and shmem folios are always allowed
        await sched.point("gup_fast_pte_range:gup_must_unshare")         # B5
        if not pte.write and self.gup_must_unshare(None, flags, folio):
            self.gup_put_folio(folio, flags)
            return None
        return folio

    async def gup_fast(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:gup_fast (v7.0): the pinned folio, or None to fall back."""
        sched = self.sched
        seq = 0
        if gup_flags & FOLL_PIN:
            await sched.point("gup_fast:raw_seqcount_try_begin")
            seq = mm.write_protect_seq.raw_read_seqcount()
            if seq & 1:
                return None
        # local_irq_save .. local_irq_restore: holds off the RCU grace period that
        # frees page tables (model/kernel.py:free_table_rcu)
        folio = await self.gup_fast_pmd_range(mm, addr, gup_flags)
        if gup_flags & FOLL_PIN:
            await sched.point("gup_fast:read_seqcount_retry")
            if mm.write_protect_seq.read_seqcount_retry(seq):
                if folio is not None:
                    self.gup_put_folio(folio, FOLL_PIN)     # gup_fast_unpin_user_pages
                return None
            if folio is not None:
                self.sanity_check_pinned_pages([folio])
        return folio

    async def gup_fast_fallback(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:gup_fast_fallback (v7.0) for one page."""
        if gup_flags & FOLL_PIN:
            self.mm_set_has_pinned_flag(mm)
        folio = await self.gup_fast(mm, addr, gup_flags)
        if folio is not None:
            return folio
        # Slow path: __gup_longterm_locked -> __get_user_pages_locked
        return await self.get_user_pages_locked(mm, addr, gup_flags | FOLL_TOUCH | FOLL_UNLOCKABLE,
                                                _Locked(0))

    async def pin_user_pages_fast(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:pin_user_pages_fast (v7.0)."""
        return await self.gup_fast_fallback(mm, addr, gup_flags | FOLL_PIN)

    async def get_user_pages_fast(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:get_user_pages_fast (v7.0): FOLL_GET."""
        return await self.gup_fast_fallback(mm, addr, gup_flags | FOLL_GET)
