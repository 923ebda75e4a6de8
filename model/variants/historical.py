"""Historical kernels: one known COW/GUP bug each, as a variant of the v7.0 model.

Each class is ``model.kernel.Kernel`` (Linux v7.0) with the historical fix
reverted: it overrides the kernel path the fix changed, at the place the fix
changed it, and reproduces the pre-fix logic translated onto the v7.0
model's structure. Where the old kernel was structured differently (no
PageAnonExclusive before v5.19, no FAULT_FLAG_UNSHARE, VM_FAULT_WRITE, folio
instead of page APIs) the docstring says how the pre-fix logic was
translated. The oracles are the model's own and are never relaxed: a variant
is expected to make ``expected_oracle`` fire, and every other design (the
upstream kernel above all) to stay clean on the same program.

Research, with the pre-fix and post-fix kernel code: /work/notes/historical.md.
Reproducers: corpus/<name>/*.cow; cow.c results: /work/notes/cowc_historical.md.

Not expressible in a base-page model without THP, hugetlb, KSM, migration,
MADV_FREE, userfaultfd or weak memory ordering: Huge Dirty COW
(CVE-2017-1000405), CVE-2020-29368, the FOLL_COW + pte_dirty rule broken
through UFFDIO_CONTINUE (CVE-2022-2590; no operation of the model makes a
dirty R/O PTE of a non-anon page in a private mapping), the uffd-wp TLB race
(6ce64428d620), the PageAnonExclusive barriers (088b8aa537c2) and MADV_FREE
vs GUP. The inverted soft-dirty test of can_change_pte_writable (after
64fe24a3e05e) breaks soft-dirty tracking only, which no oracle watches.
"""

from __future__ import annotations

from model.oracles.errors import VM_BUG_ON, Accounting, KernelBug
from model.flags import (EAGAIN, EBUSY, EEXIST, EFAULT, EMLINK, FAULT_FLAG_ALLOW_RETRY,
                         FAULT_FLAG_KILLABLE, FAULT_FLAG_REMOTE, FAULT_FLAG_TRIED,
                         FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, FOLL_FORCE, FOLL_NOFAULT,
                         FOLL_PIN, FOLL_REMOTE, FOLL_TRIED, FOLL_UNLOCKABLE, FOLL_WRITE,
                         VM_FAULT_COMPLETED, VM_FAULT_ERROR, VM_FAULT_MAJOR, VM_FAULT_OOM,
                         VM_FAULT_RETRY, VM_MAYSHARE, VM_SHARED, VM_WRITE)
from model.gup import check_vma_flags, vm_fault_to_errno
from model.kernel import Kernel
from model.memory import maybe_mkwrite, pte_needs_soft_dirty_wp
from model.mprotect import maybe_change_pte_writable
from model.page import ANON, folio_maybe_dma_pinned
from model.pgtable import mk_pte, pte_clear_soft_dirty, pte_mkdirty, pte_mksoft_dirty, \
    pte_mkwrite, pte_same, pte_wrprotect
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


# -----------------------------------------------------------------------------------------
# 1. Dirty COW
# -----------------------------------------------------------------------------------------
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
                           locked) -> int:
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

    async def _get_user_pages(self, mm, start: int, gup_flags: int, locked):
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

    async def do_wp_page(self, vmf) -> int:
        """mm/memory.c:do_wp_page (v7.0) returning v4.8's VM_FAULT_WRITE: wp_page_shared
        and wp_page_reuse returned it, wp_page_copy when it copied."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            return await self.wp_page_shared(vmf, folio) | VM_FAULT_WRITE
        if folio is not None and folio.kind == ANON and \
                (folio.anon_exclusive or self.wp_can_reuse_anon_folio(folio, vma)):
            if not folio.anon_exclusive:
                self.SetPageAnonExclusive(folio)
            if unshare:
                self.pte_unmap_unlock(vmf.ptep)
                return 0
            self.wp_page_reuse(vmf, folio)
            return VM_FAULT_WRITE
        if folio is not None:
            self.folio_get(folio)
        self.pte_unmap_unlock(vmf.ptep)
        return await self.wp_page_copy(vmf)

    async def wp_page_copy(self, vmf) -> int:
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


# -----------------------------------------------------------------------------------------
# 2. CVE-2020-29374: COW reuse decided by mapcount
# -----------------------------------------------------------------------------------------
class _ReuseSwapPage:
    """mm/swapfile.c:reuse_swap_page (v4.14 .. v5.17), for the variants that use it."""

    def reuse_swap_page(self, folio) -> tuple[bool, int]:
        """mm/swapfile.c:reuse_swap_page (v5.7), order-0 page: reuse iff mapcount +
        swapcount <= 1; the page's refcount (GUP and pipe references) is never looked
        at. When the count is 1 the page leaves the swap cache and is marked dirty (the
        model has no writeback in flight). Returns (reuse, total_map_swapcount)."""
        VM_BUG_ON(not folio.locked, "reuse_swap_page on an unlocked page", pfn=folio.pfn)
        swapcount = self._slot(folio.swap).count if folio.swapcache else 0
        count = folio.mapcount + swapcount
        if count == 1 and folio.swapcache:
            self.swap_cache_del_folio(folio)              # delete_from_swap_cache
            self.folio_mark_dirty(folio)
        return count <= 1, count


@register
class ReuseMapcount(_ReuseSwapPage, Kernel):
    """CVE-2020-29374: do_wp_page reuses an anon page whose mapcount (+ swapcount) is 1.

    Fixed in the fault path by 09854ba94c6a "mm: do_wp_page() simplification"
    (v5.9), which reuses only when page_count() is 1; v5.8 had worked around it in
    GUP instead (17839856fd58, forced COW for FOLL_GET/FOLL_PIN, reverted in v5.9
    by a308c71bf1e6). Before it, mm/memory.c:do_wp_page (v5.7) reused an anon page
    iff reuse_swap_page() -- page_mapcount + swap count <= 1 -- under the page
    lock: trylock_page, or else drop the ptl, lock_page, retake the ptl and give up
    if the PTE changed. GUP and pipe references are invisible to the mapcount, so a
    child that vmsplice()d the page and unmapped it leaves the parent reusing it in
    place: the child's pipe then returns what the parent writes after fork.

    Translation onto v7.0: v5.7 had no PageAnonExclusive; the reuse decision here
    ignores it (where it is set the mapcount is 1 anyway) and, as v7.0's reuse does,
    marks the reused page exclusive; FAULT_FLAG_UNSHARE (v5.19) reuses without
    making the PTE writable, as v7.0 does. No KSM in the model. Swap-in reuse is the
    separate variant swapin-reuse-mapcount.
    """

    name = "reuse-mapcount"
    description = "CVE-2020-29374: do_wp_page reuses by mapcount + swapcount (reuse_swap_page)"
    expected_oracle = "writable-shared"
    affected = "<= v5.7 (v5.8 worked around it in GUP with 17839856fd58)"
    fix = "09854ba94c6a mm: do_wp_page() simplification"

    async def do_wp_page(self, vmf) -> int:
        """mm/memory.c:do_wp_page (v5.7) anon branch on the v7.0 model."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        mm = vma.vm_mm
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            return await self.wp_page_shared(vmf, folio)
        if folio is not None and folio.kind == ANON:
            if not self.folio_trylock(folio):
                self.folio_get(folio)
                self.pte_unmap_unlock(vmf.ptep)
                await self.folio_lock(folio, "do_wp_page:lock_page")
                vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address,
                                                          "do_wp_page:pte_offset_map_lock")
                if vmf.ptep is None or not pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte):
                    self.folio_unlock(folio)
                    if vmf.ptep is not None:
                        self.pte_unmap_unlock(vmf.ptep)
                    self.folio_put(folio)
                    return 0
                self.folio_put(folio)
            reuse, total_map_swapcount = self.reuse_swap_page(folio)
            if reuse:
                if total_map_swapcount == 1:
                    # The page is all ours. Move it to our anon_vma so the rmap code
                    # will not search our parent or siblings.
                    self.folio_move_anon_rmap(folio, vma)
                self.folio_unlock(folio)
                if not folio.anon_exclusive:
                    self.SetPageAnonExclusive(folio)
                if unshare:
                    self.pte_unmap_unlock(vmf.ptep)
                    return 0
                self.wp_page_reuse(vmf, folio)
                return 0
            self.folio_unlock(folio)
        # copy: Ok, we need to copy. Oh, well..
        if folio is not None:
            self.folio_get(folio)
        self.pte_unmap_unlock(vmf.ptep)
        return await self.wp_page_copy(vmf)


@register
class SwapinReuseMapcount(_ReuseSwapPage, Kernel):
    """CVE-2020-29374, swap form: a write swap-in reuses the page by mapcount + swapcount.

    Fixed by c145e0b47c77 "mm: streamline COW logic in do_swap_page()" (v5.18).
    Before it, mm/memory.c:do_swap_page (v5.17) decided, for a write fault, before
    mapping the page and before swap_free():
    ``if ((vmf->flags & FAULT_FLAG_WRITE) && reuse_swap_page(page, NULL))`` -- the
    page not yet mapped here counts only its swap references -- then mapped it
    ``maybe_mkwrite(pte_mkdirty(pte))`` and exclusive, and only after that dropped
    the swap entry (swap_free) and freed the swap cache if memcg swap was full or the
    VMA mlocked. A child that GUP-referenced the swapped-in page and unmapped it left
    the parent's write fault reusing it ("Child can observe changes").

    Translation onto v7.0: the v5.19 exclusive-swap-PTE shortcut (``exclusive``,
    with its read-fault write-enable) is kept; v5.18's ``page_count == 1`` term is
    replaced by v5.17's reuse_swap_page on write faults; swap_free of the entry
    replaces folio_put_swap (the page may have left the swap cache already); the
    post-map swap-cache freeing is v5.17's (never, with no memcg or mlock in the
    model). do_wp_page is v7.0's.
    """

    name = "swapin-reuse-mapcount"
    description = "CVE-2020-29374 via swap: do_swap_page reuses by mapcount + swapcount"
    expected_oracle = "writable-shared"
    affected = "<= v5.17 (survived 09854ba94c6a)"
    fix = "c145e0b47c77 mm: streamline COW logic in do_swap_page()"

    def swap_free(self, entry: int) -> None:
        """mm/swapfile.c:swap_free (v5.17): drop one swap-PTE reference to ``entry``;
        the slot is freed once nothing (no PTE, no swap cache) refers to it."""
        slot = self._slot(entry)
        if slot.count <= 0:
            raise Accounting(f"swap count of {slot.name} drops below zero", swp=entry)
        self.sched.log(slot, "count", slot.count, slot.count - 1)
        slot.count -= 1
        self._maybe_free_slot(slot)

    async def do_swap_page(self, vmf) -> int:
        """mm/memory.c:do_swap_page (v5.17 reuse and order) on the v7.0 model."""
        vma = vmf.vma
        mm = vma.vm_mm
        entry = vmf.orig_pte.swp
        ret = 0
        if entry not in self.swap_slots:
            return 0
        folio = self.swap_cache_get_folio(entry)
        if folio is None:
            folio = await self.swapin_readahead(entry, "do_swap_page")
            if folio is None:
                vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address,
                                                          "do_swap_page:pte_offset_map_lock")
                if vmf.ptep is not None and pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte):
                    ret = VM_FAULT_OOM
                if vmf.ptep is not None:
                    self.pte_unmap_unlock(vmf.ptep)
                return ret
            ret = VM_FAULT_MAJOR
        swapcache = folio
        ret |= await self.folio_lock_or_retry(folio, vmf)
        if ret & VM_FAULT_RETRY:
            self.folio_put(folio)
            return ret
        if not folio.swapcache or folio.swap != entry:
            self.folio_unlock(folio)
            self.folio_put(folio)
            return ret
        vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address,
                                                  "do_swap_page:pte_offset_map_lock")
        if vmf.ptep is None or not pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte):
            if vmf.ptep is not None:
                self.pte_unmap_unlock(vmf.ptep)
            if folio.swapcache:
                self.folio_free_swap(folio)
            self.folio_unlock(folio)
            self.folio_put(folio)
            return ret
        if folio.anon_exclusive:
            raise KernelBug(f"do_swap_page: swap cache {folio.name} is PageAnonExclusive",
                            pfn=folio.pfn, va=vmf.address)
        exclusive = vmf.orig_pte.swp_exclusive
        if folio is not swapcache:
            exclusive = True
        pte = mk_pte(folio)
        if vmf.orig_pte.soft_dirty:
            pte = pte_mksoft_dirty(pte)
        exclusive_map = False
        if exclusive:
            if (vma.vm_flags & VM_WRITE) and not pte_needs_soft_dirty_wp(vma, pte):
                pte = pte_mkwrite(pte)
                if vmf.flags & FAULT_FLAG_WRITE:
                    pte = pte_mkdirty(pte)
                    vmf.flags &= ~FAULT_FLAG_WRITE
            exclusive_map = True
        elif (vmf.flags & FAULT_FLAG_WRITE) and self.reuse_swap_page(folio)[0]:
            # v5.17: reuse_swap_page() must be called while the page is counted on
            # swap but not yet in mapcount, i.e. before page_add_anon_rmap() and
            # swap_free()
            pte = maybe_mkwrite(pte_mkdirty(pte), vma)
            vmf.flags &= ~FAULT_FLAG_WRITE
            exclusive_map = True
        vmf.orig_pte = pte
        if folio.index is None:
            self.folio_add_new_anon_rmap(folio, vma, vmf.address, exclusive_map)
        else:
            self.folio_add_anon_rmap_pte(folio, vma, vmf.address, exclusive_map)
        self.swap_free(entry)
        if folio.kind != ANON or (pte.write and not folio.anon_exclusive):
            raise KernelBug("do_swap_page maps a writable page that is not PageAnonExclusive",
                            pfn=folio.pfn, va=vmf.address)
        self.set_pte_at(mm, vmf.address, vmf.ptep, pte)
        # v5.17: try_to_free_swap() only if mem_cgroup_swap_full(), VM_LOCKED or
        # PageMlocked() -- none of which the model has
        self.folio_unlock(folio)
        if vmf.flags & FAULT_FLAG_WRITE:
            ret |= await self.do_wp_page(vmf)
            return ret
        self.pte_unmap_unlock(vmf.ptep)
        return ret


# -----------------------------------------------------------------------------------------
# 3. fork vs GUP-fast without write_protect_seq
# -----------------------------------------------------------------------------------------
@register
class ForkGupFastRace(Kernel):
    """fork() vs GUP-fast: a FOLL_PIN taken while fork shares the page survives.

    Fixed by 57efa1fe5957 "mm/gup: prevent gup_fast from racing with COW during
    fork", which wraps copy_page_range in a write_protect_seq write section and has
    GUP-fast (FOLL_PIN) sample it before the lockless walk and unpin and fall back
    to slow GUP if it was odd or changed. Before it,
    mm/gup.c:internal_get_user_pages_fast (v5.9) walked the page table with IRQs off
    and no check at all against a concurrent fork: it could pin the page after fork
    decided it was not pinned (then page_maybe_dma_pinned(), today
    folio_try_dup_anon_rmap_pte clearing PageAnonExclusive) and before fork
    write-protected the parent's PTE -- "GUP now returns with a write protected
    page", shared with the child.

    Translation onto v7.0: gup_fast without the read side. The write side stays in
    copy_page_range (nothing reads it any more; v7.0's folio_needs_cow_for_dma
    asserts that it is held). v7.0's sanity_check_pinned_pages (CONFIG_DEBUG_VM,
    v5.19) still runs on what GUP-fast returns, and catches the pinned page that
    fork made non-exclusive: tests/planted.py has the same change as a test-only
    planted bug.
    """

    name = "fork-gup-fast-race"
    description = "57efa1fe5957 reverted: GUP-fast (FOLL_PIN) ignores write_protect_seq vs fork"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.9-rc7 .. v5.10 (fixed in v5.11-rc1, merged 2020-12-15)"
    fix = "57efa1fe5957 mm/gup: prevent gup_fast from racing with COW during fork"

    async def gup_fast(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:internal_get_user_pages_fast (v5.9) on the v7.0 gup_fast: the
        lockless walk with no write_protect_seq read section."""
        folio = await self.gup_fast_pmd_range(mm, addr, gup_flags)
        if gup_flags & FOLL_PIN and folio is not None:
            self.sanity_check_pinned_pages([folio])
        return folio


# -----------------------------------------------------------------------------------------
# 4. fork without early COW of pinned pages
# -----------------------------------------------------------------------------------------
@register
class ForkNoEarlyCow(Kernel):
    """fork() shares and write-protects pinned anon pages (no early COW).

    Fixed by 70e806e4e645 "mm: Do early cow for pinned pages during fork() for ptes"
    (v5.9-rc7, with 008cfe4418b3 "mm: Introduce mm_struct.has_pinned"): a page that
    may be pinned is copied for the child at fork (copy_present_page) and the
    parent's PTE is left as it is. Before it, mm/memory.c:copy_one_pte (v5.8) called
    ``page_dup_rmap(page, false)`` for every page and write-protected it in parent
    and child; the parent's next write COWed away from the pinned page (RDMA, io_uring
    fixed buffers: "fork needs MADV_DONTFORK").

    Translation onto v7.0: the early-COW decision lives in
    folio_try_dup_anon_rmap_pte (v5.19: -EBUSY when the exclusive page may be pinned
    makes copy_present_ptes copy). Pre-fix it never fails: it duplicates the
    mapping, and -- as sharing a page means in the PageAnonExclusive model -- clears
    PageAnonExclusive.
    """

    name = "fork-no-early-cow"
    description = "70e806e4e645 reverted: fork shares and write-protects pinned anon pages"
    expected_oracle = "pin-coherence"
    affected = "<= v5.9-rc6"
    fix = "70e806e4e645 mm: Do early cow for pinned pages during fork() for ptes"

    def folio_try_dup_anon_rmap_pte(self, folio, dst_vma, src_vma) -> int:
        """mm/memory.c:copy_one_pte (v5.8): page_dup_rmap() whether pinned or not."""
        if folio.anon_exclusive:
            self.ClearPageAnonExclusive(folio)
        self.folio_mapcount_add(folio, 1)
        return 0


# -----------------------------------------------------------------------------------------
# 5. page_count-only reuse (v5.9 .. v5.18)
# -----------------------------------------------------------------------------------------
@register
class ReuseRefcount(Kernel):
    """Reuse only by refcount: a write fault COWs a pinned exclusive page away from its pin.

    Fixed by the PageAnonExclusive series (v5.19), 6c287605fd56 "mm: remember
    exclusively mapped anonymous pages with PG_anon_exclusive": an exclusive page is
    reused whatever its refcount. From 09854ba94c6a (v5.9) to v5.18,
    mm/memory.c:do_wp_page (v5.18) reused an anon page only if page_count() said it
    was the only reference; v5.18 (53a05ad9f21d, d4c470970d45) gave it the form
    v7.0 keeps as wp_can_reuse_anon_folio: count > 3 gives up, lru_add_drain,
    count > 1 + swapcache gives up, trylock_page, try_to_free_swap, reuse iff
    count == 1. A pin (GUP_PIN_COUNTING_BIAS) always fails that, so once anything
    write-protected a pinned page (mprotect, clear_refs, swap) the process's next
    write replaced it: "wrong COW", cow.c cases 7, 13 and 14.

    Translation onto v7.0: do_wp_page without the PageAnonExclusive short-cut --
    only wp_can_reuse_anon_folio (the v5.18 checks) decides; a reused page is marked
    exclusive as v7.0 does. Everything else keeps PageAnonExclusive (GUP's unshare,
    fork's early COW, the mprotect upgrade).
    """

    name = "reuse-refcount"
    description = "v5.9-v5.18 do_wp_page: reuse only if page_count is 1 (no PageAnonExclusive)"
    expected_oracle = "pin-coherence"
    affected = "v5.9 .. v5.18"
    fix = "6c287605fd56 mm: remember exclusively mapped anonymous pages with PG_anon_exclusive"

    async def do_wp_page(self, vmf) -> int:
        """mm/memory.c:do_wp_page (v5.18) anon branch on the v7.0 model."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            return await self.wp_page_shared(vmf, folio)
        if folio is not None and folio.kind == ANON and self.wp_can_reuse_anon_folio(folio, vma):
            if not folio.anon_exclusive:
                self.SetPageAnonExclusive(folio)
            if unshare:
                self.pte_unmap_unlock(vmf.ptep)
                return 0
            self.wp_page_reuse(vmf, folio)
            return 0
        if folio is not None:
            self.folio_get(folio)
        self.pte_unmap_unlock(vmf.ptep)
        return await self.wp_page_copy(vmf)


# -----------------------------------------------------------------------------------------
# 10a. unlock_page after wp_page_reuse
# -----------------------------------------------------------------------------------------
@register
class MisplacedUnlockPage(Kernel):
    """do_wp_page unlocks the page it reused after dropping the ptl: it may be freed by then.

    Fixed by be068f29034f "mm: fix misplaced unlock_page in do_wp_page()" (v5.9-rc7).
    09854ba94c6a (a v5.9 rc) made mm/memory.c:do_wp_page (v5.9-rc6) reuse an anon page
    when, under trylock_page, page_count() and page_mapcount() were 1, and end with
    ``wp_page_reuse(vmf); unlock_page(page); return VM_FAULT_WRITE;``. wp_page_reuse
    drops the ptl, and the reuse path holds no reference of its own (page_count()
    == 1 is the mapping's): "we keep the page locked until after we do the
    pte_unmap_unlock(), so now we have no guarantees that we hold the page
    reference. And then we unlock it - while somebody else might be freeing it"
    (Linus; s390 "Bad page state" with PG_locked). The fix unlocks before
    wp_page_reuse.

    Translation onto v7.0: the page lock is taken by wp_can_reuse_anon_folio (the
    v5.18 form of the same checks, v7.0 unlocks inside it); here a reusable page is
    returned still locked and do_wp_page unlocks it after wp_page_reuse. The model
    runs a task's consecutive releases in one step, so the window between the ptl
    release and unlock_page, where another CPU may zap and free the page, is a
    scheduling point here. PageAnonExclusive pages (v5.19) are reused without the
    page lock, as in v7.0, and FAULT_FLAG_UNSHARE (v5.19) unlocks before returning.
    The model reports the bug where the kernel did: freeing a page that is still
    locked is a "Bad page state" (PageOps.free_folio, VM_BUG_ON).
    """

    name = "misplaced-unlock-page"
    description = "be068f29034f reverted: do_wp_page unlocks the reused page after the ptl"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.9 release candidates before rc7 (since 09854ba94c6a)"
    fix = "be068f29034f mm: fix misplaced unlock_page in do_wp_page()"

    def wp_can_reuse_anon_folio(self, folio, vma) -> bool:
        """mm/memory.c:wp_can_reuse_anon_folio (v7.0) checks, but a reusable folio is
        returned locked (v5.9-rc6's do_wp_page unlocked it after wp_page_reuse)."""
        if folio._refcount > 3:
            return False
        if folio._refcount > 1 + int(folio.swapcache):
            return False
        if not self.folio_trylock(folio):
            return False
        if folio.swapcache:
            self.folio_free_swap(folio)
        if folio._refcount != 1:
            self.folio_unlock(folio)
            return False
        self.folio_move_anon_rmap(folio, vma)
        return True

    async def do_wp_page(self, vmf) -> int:
        """mm/memory.c:do_wp_page (v5.9-rc6 unlock order) on the v7.0 model."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            return await self.wp_page_shared(vmf, folio)
        if folio is not None and folio.kind == ANON:
            locked = not folio.anon_exclusive and self.wp_can_reuse_anon_folio(folio, vma)
            if folio.anon_exclusive or locked:
                if not folio.anon_exclusive:
                    self.SetPageAnonExclusive(folio)
                if unshare:
                    if locked:
                        self.folio_unlock(folio)
                    self.pte_unmap_unlock(vmf.ptep)
                    return 0
                self.wp_page_reuse(vmf, folio)
                if locked:
                    await self.sched.point("do_wp_page:unlock_page")
                    self.folio_unlock(folio)
                return 0
        if folio is not None:
            self.folio_get(folio)
        self.pte_unmap_unlock(vmf.ptep)
        return await self.wp_page_copy(vmf)


# -----------------------------------------------------------------------------------------
# 6, 7. R/O pins without unsharing
# -----------------------------------------------------------------------------------------
@register
class RoPinNoUnshare(Kernel):
    """R/O FOLL_PIN of a possibly shared anon page pins it without unsharing.

    Fixed by a7f226604170 "mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a
    possibly shared anonymous page" (v5.19), which added gup_must_unshare() for anon
    pages (``return !PageAnonExclusive(page)``), -EMLINK in follow_page_pte and the
    GUP-fast back-off. Before it mm/gup.c:follow_page_pte (v5.18) and GUP-fast
    grabbed the page of a R/O PTE for a R/O pin, shared or not -- "(1) Ignore and
    pin -- what we do right now" -- and the next write fault replaced the page under
    the pin.

    Translation onto v7.0: gup_must_unshare says no for anon pages. Its non-anon
    FOLL_LONGTERM branch is a later fix (84209e87c696, variant no-unshare-non-anon)
    and is kept. v7.0's CONFIG_DEBUG_VM check in follow_page_pte (v5.19, "mm/gup:
    sanity-check with CONFIG_DEBUG_VM that anonymous pages are exclusive when
    (un)pinning") fires on the pin it lets through: tests/planted.py has the same
    change as a test-only planted bug.
    """

    name = "ro-pin-no-unshare"
    description = "a7f226604170 reverted: R/O FOLL_PIN of a shared anon page does not unshare"
    expected_oracle = "VM_BUG_ON"
    affected = "<= v5.18"
    fix = ("a7f226604170 mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly "
           "shared anonymous page")

    def gup_must_unshare(self, vma, flags: int, folio) -> bool:
        """mm/internal.h:gup_must_unshare without its anon case (before v5.19)."""
        if folio.kind == ANON:
            return False
        return super().gup_must_unshare(vma, flags, folio)


@register
class NoUnshareNonAnon(Kernel):
    """R/O long-term pins of page-cache pages and the zero page in COW mappings.

    Fixed by 84209e87c696 "mm/gup: reliable R/O long-term pinning in COW mappings"
    (v6.2, on 8d6a0ac09a16 "mm: extend FAULT_FLAG_UNSHARE support to anything in a
    COW mapping"). Before it mm/internal.h:gup_must_unshare (v6.1) returned false
    for every !PageAnon page: a R/O FOLL_LONGTERM pin of the page-cache page or
    shared zero page mapped R/O in a private writable mapping pinned that page, and
    the process's next write COWed it into a fresh anon page the pin never sees
    (cow.c's non-anon "R/O longterm GUP pin" cases).

    Translation onto v7.0: gup_must_unshare's non-anon branch (FOLL_LONGTERM, COW
    mapping, or no VMA for GUP-fast) is dropped; the anon rule is unchanged.
    """

    name = "no-unshare-non-anon"
    description = "84209e87c696 reverted: R/O longterm pins of non-anon pages do not unshare"
    expected_oracle = "pin-coherence"
    affected = "v5.19 .. v6.1"
    fix = "84209e87c696 mm/gup: reliable R/O long-term pinning in COW mappings"

    def gup_must_unshare(self, vma, flags: int, folio) -> bool:
        """mm/internal.h:gup_must_unshare (v5.19): ``if (!PageAnon(page)) return false;``"""
        if folio.kind != ANON:
            return False
        return super().gup_must_unshare(vma, flags, folio)


# -----------------------------------------------------------------------------------------
# 8. swap-out of pinned pages
# -----------------------------------------------------------------------------------------
@register
class SwapoutPinnedRace(Kernel):
    """Swap-out checks pins only before it unmaps: a GUP-fast pin can slip in between.

    Fixed by the PageAnonExclusive series (v5.19), 6c287605fd56 "mm: remember
    exclusively mapped anonymous pages with PG_anon_exclusive", whose
    try_to_unmap_one clears the PTE first and then calls page_try_share_anon_rmap()
    (today folio_try_share_anon_rmap_pte), which fails for a maybe-pinned page and
    makes the unmap restore the PTE and abort. From feb889fb40fa (v5.11-rc5) to
    v5.18 the only pin check of swap-out was shrink_page_list's
    page_maybe_dma_pinned() before add_to_swap(), taken with the PTE still present:
    a GUP-fast pin after it still had the page unmapped into the swap cache ("If we
    race with someone pinning a page, we can trigger the same issue as in the
    FOLL_GET case", PAE cover letter): mm/rmap.c:try_to_unmap_one (v5.18) checked no
    pins.

    Translation onto v7.0: folio_try_share_anon_rmap_pte without the pin check --
    it clears PageAnonExclusive of whatever it unmaps, so the swap PTE keeps the
    v5.19 exclusive bit. The pinned page thus loses PageAnonExclusive while pinned,
    which v7.0's CONFIG_DEBUG_VM sanity check reports when GUP-fast returns the pin
    or when it is unpinned (VM_BUG_ON); a fork before the swap-in makes the next
    write COW away from the pin (pin-coherence), the historical outcome. (A plain
    read then write no longer does: the exclusive swap PTE, v5.19, maps the pinned
    page back writable.)
    """

    name = "swapout-pinned-race"
    description = "pre-v5.19 try_to_unmap_one: no pin check after clearing the PTE"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.11-rc5 .. v5.18 (before that: swapout-pinned)"
    fix = "6c287605fd56 mm: remember exclusively mapped anonymous pages with PG_anon_exclusive"

    def folio_try_share_anon_rmap_pte(self, folio) -> int:
        """mm/rmap.c:try_to_unmap_one (v5.18) anon branch: the page is unmapped to
        swap whatever its pins; PageAnonExclusive is cleared as v7.0 does for a page
        that becomes shared through its swap entry."""
        if not folio.anon_exclusive:
            raise KernelBug("folio_try_share_anon_rmap on a page that is not exclusive",
                            pfn=folio.pfn)
        self.ClearPageAnonExclusive(folio)
        return 0


@register
class SwapoutPinned(SwapoutPinnedRace):
    """Reclaim puts pinned pages into the swap cache and unmaps them.

    Fixed by feb889fb40fa "mm: don't put pinned pages into the swap cache" (v5.11-rc5,
    in v5.10.y), the two lines ``if (page_maybe_dma_pinned(page)) goto keep_locked;``
    before add_to_swap() in mm/vmscan.c:shrink_page_list (v5.11). Before it
    (mm/vmscan.c:shrink_page_list (v5.10)) nothing in
    swap-out looked at pins (try_to_unmap_one did not either: variant
    swapout-pinned-race, whose change this variant inherits, as kernels before
    v5.11-rc5 had both): reclaim unmapped a pinned page, the next fault mapped it
    back R/O and the next write COWed it away from the pin.

    Translation onto v7.0: shrink_folio without the folio_maybe_dma_pinned() check
    before folio_alloc_swap(). v7.0's later check after a successful unmap
    (d824ec2a1546-style "no point in trying to reclaim folio if it is pinned") is a
    different fix and stays; it only keeps the unmapped page in the swap cache.
    """

    name = "swapout-pinned"
    description = "feb889fb40fa reverted: reclaim swaps out pinned anon pages"
    expected_oracle = "VM_BUG_ON"
    affected = "v5.9 .. v5.11-rc4 (harmful since 09854ba94c6a)"
    fix = "feb889fb40fa mm: don't put pinned pages into the swap cache"

    async def shrink_folio(self, folio) -> bool:
        """mm/vmscan.c:shrink_page_list (v5.10) for one folio, on the v7.0 model's
        shrink_folio: add_to_swap() whether the page is pinned or not."""
        sched = self.sched
        if not self.folio_trylock(folio):
            self._putback(folio)                                     # keep
            return False
        if folio.kind == ANON and not folio.swapcache:
            if not self.folio_alloc_swap(folio, "shrink_folio_list:folio_alloc_swap"):
                self.folio_unlock(folio)                              # activate_locked
                self._putback(folio)
                return False
            self.folio_mark_dirty(folio)
        if folio.mapcount:
            await self.try_to_unmap(folio, batch_flush=True)
            if folio.mapcount:
                self.folio_unlock(folio)                              # activate_locked
                self._putback(folio)
                return False
        if folio_maybe_dma_pinned(folio):
            self.folio_unlock(folio)                                  # activate_locked
            self._putback(folio)
            return False
        if folio.dirty:
            await self.try_to_unmap_flush("shrink_folio_list:try_to_unmap_flush_dirty")
            slot = self.swap_slots[folio.swap]
            sched.log(slot, "data", slot.data, folio.data)
            slot.data = folio.data
            folio.dirty = False
            sched.log(folio, "dirty", True, False)
            self.folio_unlock(folio)
            await sched.point("shrink_folio_list:after_pageout")
            if folio.dirty or not self.folio_trylock(folio):
                self._putback(folio)                                  # keep
                return False
            if folio.dirty:
                self.folio_unlock(folio)
                self._putback(folio)
                return False
        if not self._remove_mapping(folio):
            self.folio_unlock(folio)                                  # keep_locked
            self._putback(folio)
            return False
        return True


# -----------------------------------------------------------------------------------------
# 9. mprotect write-upgrade ignoring PageAnonExclusive (a mutant)
# -----------------------------------------------------------------------------------------
@register
class MprotectIgnoresPae(Kernel):
    """MUTANT (no mainline kernel shipped it): mprotect upgrades any anon PTE to writable.

    The private-mapping write upgrade of mprotect,
    mm/mprotect.c:can_change_pte_writable (v6.0), came with 64fe24a3e05e
    "mm/mprotect: try avoiding write faults for exclusive anonymous pages when
    changing protection" (v6.0) and checked PageAnonExclusive from its first version:
    "We can only special-case on exclusive anonymous pages, because we know that our
    write-fault handler similarly would map them writable without any additional
    checks while holding the PT lock". This mutant drops that check
    (can_change_pte_writable accepts any anon page), so mprotect(PROT_READ) then
    mprotect(PROT_READ|PROT_WRITE) after fork maps the COW-shared page writable in
    the parent (cow.c's "with mprotect() optimization" cases). The real bug in that
    function, the inverted soft-dirty test fixed after 64fe24a3e05e, breaks only
    soft-dirty tracking, which no oracle of the model watches.
    """

    name = "mprotect-ignores-pae"
    description = "mutant: mprotect's write upgrade ignores PageAnonExclusive"
    expected_oracle = "writable-shared"
    affected = "none (mutant of v6.0+ can_change_pte_writable)"
    fix = ("64fe24a3e05e mm/mprotect: try avoiding write faults for exclusive anonymous "
           "pages when changing protection")

    def can_change_pte_writable(self, vma, addr: int, pte) -> bool:
        """mm/mprotect.c:can_change_pte_writable (v7.0) with
        ``return page && PageAnon(page)`` for private mappings."""
        if not maybe_change_pte_writable(vma, pte):
            return False
        if vma.vm_flags & VM_SHARED:
            return pte.dirty
        folio = self.vm_normal_page(vma, addr, pte)
        return folio is not None and folio.kind == ANON


# -----------------------------------------------------------------------------------------
# 10b. clear_refs write-protecting pinned pages
# -----------------------------------------------------------------------------------------
@register
class ClearRefsPinned(ReuseRefcount):
    """clear_refs (soft-dirty) write-protects pinned pages; the next write COWs them away.

    Fixed by 9348b73c2e1b "mm: don't play games with pinned pages in
    clear_page_refs" (v5.11-rc5, with 29a951dfb3c3 "mm: fix clear_refs_write
    locking"): clear_soft_dirty skips a writable PTE of a maybe-pinned page in a COW
    mapping of an mm that has pinned (pte_is_pinned). Before it,
    fs/proc/task_mmu.c:clear_soft_dirty (v5.10) write-protected and cleaned every
    present PTE: ``ptent = pte_wrprotect(old_pte); ptent =
    pte_clear_soft_dirty(ptent);``.

    The missing skip is harmful only with page_count-based reuse: on v7.0's
    do_wp_page a pinned page is PageAnonExclusive and reused. So this variant is
    reuse-refcount (v5.9 .. v5.18, which v5.9 .. v5.10 kernels had) with v5.10's
    clear_soft_dirty; reuse-refcount alone stays clean on its reproducer.
    """

    name = "clear-refs-pinned"
    description = "9348b73c2e1b reverted (on reuse-refcount): clear_refs wrprotects pinned pages"
    expected_oracle = "pin-coherence"
    affected = "v5.9 .. v5.11-rc4"
    fix = "9348b73c2e1b mm: don't play games with pinned pages in clear_page_refs"

    def clear_soft_dirty(self, vma, addr: int, ptep) -> None:
        """fs/proc/task_mmu.c:clear_soft_dirty (v5.10): no pte_is_pinned() skip."""
        pte = self.ptep_get(ptep)
        if pte is None:
            return
        if pte.present:
            new = pte_clear_soft_dirty(pte_wrprotect(pte))
        else:
            new = pte._copy(soft_dirty=False)
        if new != pte:
            self.set_pte_at(vma.vm_mm, addr, ptep, new)
