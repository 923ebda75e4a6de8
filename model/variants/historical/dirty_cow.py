"""The historical variant dirty-cow: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/dirty-cow.diff.
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import (EAGAIN, EBUSY, EEXIST, EFAULT, EMLINK, FAULT_FLAG_ALLOW_RETRY,
                         FAULT_FLAG_KILLABLE, FAULT_FLAG_REMOTE, FAULT_FLAG_TRIED,
                         FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, FOLL_FORCE, FOLL_NOFAULT,
                         FOLL_REMOTE, FOLL_TRIED, FOLL_UNLOCKABLE, FOLL_WRITE,
                         VM_FAULT_COMPLETED, VM_FAULT_ERROR, VM_FAULT_RETRY, VM_MAYSHARE,
                         VM_SHARED, VM_WRITE)
from model.gup import _Locked, check_vma_flags, vm_fault_to_errno
from model.kernel import Kernel
from model.memory import VmFault
from model.page import ANON
from model.variants import register


#: include/linux/mm.h (v4.8 .. v6.0): "Special case for get_user_pages"; do_wp_page
#: returned it when it reused or copied the page. Removed in v6.1 with its last user
#: (FOLL_COW); v7.0 has no such bit, and 0x8 is unused by the model's vm_fault_t.
VM_FAULT_WRITE = 0x000008


class _FlagsRef:
    """An ``unsigned int *flags`` of the old GUP API (v4.8's faultin_page took the
    caller's foll_flags by reference and could change them)."""

    __slots__ = ("value",)

    def __init__(self, value: int):
        self.value = value

@register
class DirtyCow(Kernel):
    """Dirty COW, CVE-2016-5195: GUP forgets FOLL_WRITE once a write fault broke COW.

    Fixed by 19be0eaffa3a "mm: remove gup_flags FOLL_WRITE games from
    __get_user_pages()" (v4.9-rc2). Before it, in v4.8:

    * mm/gup.c:follow_page_pte (v4.8) refused any read-only PTE for FOLL_WRITE:
      ``if ((flags & FOLL_WRITE) && !pte_write(pte)) return NULL;`` -- FOLL_FORCE
      had no say there (the fix added can_follow_write_pte with FOLL_COW);
    * mm/gup.c:faultin_page (v4.8) took the caller's ``foll_flags`` by reference and
      ended with
      ``if ((ret & VM_FAULT_WRITE) && !(vma->vm_flags & VM_WRITE)) *flags &=
      ~FOLL_WRITE;`` -- "do subsequent page lookups as if they were reads", so the
      retry of __get_user_pages looked the page up as a read.

    A FOLL_FORCE write (/proc/pid/mem, ptrace) to a read-only private file mapping
    faults the page in (do_cow_fault: an anon copy mapped dirty but read-only, as
    VM_WRITE is clear), faults again (do_wp_page reuses the copy and returns
    VM_FAULT_WRITE) and drops FOLL_WRITE; if MADV_DONTNEED zaps the copy before the
    retry, the retry read-faults the page-cache page back in and the kernel writes
    the file's page.

    Translation onto v7.0: v7.0 has no VM_FAULT_WRITE, so do_wp_page and
    wp_page_copy here return it where v4.8's did (wp_page_reuse and wp_page_shared;
    wp_page_copy when page_copied). do_swap_page needs no change: for a !VM_WRITE
    VMA the v7.0 swap-in leaves FAULT_FLAG_WRITE set and calls do_wp_page, which
    returns it (v4.8 returned it from do_swap_page's own reuse). Only !VM_WRITE
    VMAs act on the bit, so nothing else observes it.
    """

    name = "dirty-cow"
    description = "CVE-2016-5195: GUP drops FOLL_WRITE after a COW fault and retries as a read"
    expected_oracle = "writable-shared"
    affected = "v2.6.13 (f33ea7f404e5) .. v4.8; fixed in v4.9-rc2 and the stable trees"
    fix = "19be0eaffa3a mm: remove gup_flags FOLL_WRITE games from __get_user_pages()"

    async def follow_page_pte(self, vma, address: int, flags: int):
        """mm/gup.c:follow_page_pte (v4.8): ``(flags & FOLL_WRITE) && !pte_write(pte)``
        sends every read-only PTE to a write fault. In the v7.0 follow_page_pte only
        can_follow_write_pte reads FOLL_FORCE, so v4.8's check is v7.0's with
        FOLL_FORCE masked off (it is a caller's flag: nothing else here looks at it)."""
        return await super().follow_page_pte(vma, address, flags & ~FOLL_FORCE)

    async def faultin_page(self, vma, address: int, flags: _FlagsRef, unshare: bool,
                           locked: _Locked) -> int:
        """mm/gup.c:faultin_page (v4.8) on the v7.0 one: ``flags`` is the caller's
        foll_flags by reference, and FOLL_WRITE is dropped after VM_FAULT_WRITE."""
        if flags.value & FOLL_NOFAULT:
            return -EFAULT
        fault_flags = 0
        if flags.value & FOLL_WRITE:
            fault_flags |= FAULT_FLAG_WRITE
        if flags.value & FOLL_REMOTE:
            fault_flags |= FAULT_FLAG_REMOTE
        if flags.value & FOLL_UNLOCKABLE:
            fault_flags |= FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE
        if flags.value & FOLL_TRIED:
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
            return vm_fault_to_errno(ret, flags.value)
        if ret & VM_FAULT_RETRY:
            locked.value = 0
            return -EBUSY
        # The VM_FAULT_WRITE bit tells us that do_wp_page has broken COW when
        # necessary, even if maybe_mkwrite decided not to set pte_write. We
        # can thus safely do subsequent page lookups as if they were reads.
        if (ret & VM_FAULT_WRITE) and not (vma.vm_flags & VM_WRITE):
            self.sched.log(self.sched.current, "foll_flags.FOLL_WRITE", True, False)
            flags.value &= ~FOLL_WRITE
        return 0

    async def _get_user_pages(self, mm, start: int, gup_flags: int, locked: _Locked):
        """mm/gup.c:__get_user_pages (v4.8) for one page: ``foll_flags`` starts as
        gup_flags for the page and keeps what faultin_page did to it across the
        ``goto retry`` loop."""
        vma = mm.find_vma(start)
        if vma is None:
            return -EFAULT
        ret = check_vma_flags(vma, gup_flags)
        if ret:
            return ret
        foll_flags = _FlagsRef(gup_flags)
        while True:
            page = await self.follow_page_pte(vma, start, foll_flags.value)
            if page is None or page == -EMLINK:
                ret = await self.faultin_page(vma, start, foll_flags, page == -EMLINK, locked)
                if ret == 0:
                    await self.sched.point("__get_user_pages:retry")
                    continue
                if ret in (-EBUSY, -EAGAIN):
                    return 0
                return ret
            if page == -EEXIST:
                return -EEXIST
            return page

    async def do_wp_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_wp_page (v7.0) returning v4.8's VM_FAULT_WRITE: wp_page_shared
        and wp_page_reuse returned it, wp_page_copy when it copied."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        ptl = vmf.ptep.table.ptl
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            # Shared mapping: we are guaranteed VM_WRITE and FAULT_FLAG_WRITE here.
            return await self.wp_page_shared(vmf, folio) | VM_FAULT_WRITE
        # Private mapping: reuse an exclusive anonymous page, else copy.
        if folio is not None and folio.kind == ANON and \
                (folio.anon_exclusive or self.wp_can_reuse_anon_folio(folio, vma)):
            if not folio.anon_exclusive:
                self.SetPageAnonExclusive(folio)
            if unshare:
                ptl.unlock(self.sched)
                return 0
            self.wp_page_reuse(vmf, folio)
            return VM_FAULT_WRITE
        if folio is not None:
            self.folio_get(folio)
        ptl.unlock(self.sched)
        return await self.wp_page_copy(vmf)

    async def wp_page_copy(self, vmf: VmFault) -> int:
        """mm/memory.c:wp_page_copy (v4.8 return value): ``page_copied ? VM_FAULT_WRITE
        : 0``. The v7.0 body is unchanged and returns 0 either way; it copied iff the
        page it allocated survives (nothing yields before folio_prealloc, so that page
        is the first allocated after entry, and the body frees it when the PTE changed
        under it)."""
        first = len(self.folios)
        ret = await super().wp_page_copy(vmf)
        if ret == 0 and not (vmf.flags & FAULT_FLAG_UNSHARE) and len(self.folios) > first \
                and not self.folios[first].freed:
            ret |= VM_FAULT_WRITE
        return ret
