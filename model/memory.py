"""Page faults: mm/memory.c (v7.0) handle_mm_fault and the handlers below it.

Structure and order follow the kernel function by function. Scheduling
points sit where another CPU can interleave: before every lockless PTE read,
at every lock acquisition, and between dropping a lock and retaking it
(wp_page_copy copies the page with no lock held, then re-checks the PTE).

Not modelled: THP/PMD mappings, userfaultfd, NUMA hinting, KSM, fault-around
(do_fault_around maps neighbouring page-cache pages; it changes how many
PTEs are populated, not the COW rules).
"""

from __future__ import annotations

from model.oracles.errors import KernelBug
from model.flags import (FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_ORIG_PTE_VALID,
                         FAULT_FLAG_RETRY_NOWAIT, FAULT_FLAG_TRIED, FAULT_FLAG_UNSHARE,
                         FAULT_FLAG_VMA_LOCK, FAULT_FLAG_WRITE, VM_FAULT_LOCKED, VM_FAULT_MAJOR,
                         VM_FAULT_NOPAGE, VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_SIGBUS,
                         VM_FAULT_SIGSEGV, VM_MAYSHARE, VM_MAYWRITE, VM_SHARED, VM_WRITE,
                         is_cow_mapping)
from model.mm import vma_is_anonymous, vma_soft_dirty_enabled
from model.page import ANON
from model.swap import SWP_STABLE_WRITES, SWP_SYNCHRONOUS_IO
from model.pgtable import (mk_pte, pte_mkdirty, pte_mksoft_dirty, pte_mkspecial_zero, pte_mkwrite,
                           pte_mkyoung, pte_same, pte_write)


class VmFault:
    """struct vm_fault."""

    __slots__ = ("vma", "address", "flags", "orig_pte", "ptep", "page", "cow_page")

    def __init__(self, vma, address: int, flags: int):
        self.vma = vma
        self.address = address
        self.flags = flags
        self.orig_pte = None
        self.ptep = None
        self.page = None
        self.cow_page = None


def maybe_mkwrite(pte, vma):
    """include/linux/mm.h:maybe_mkwrite: writable only if the VMA allows writes."""
    if vma.vm_flags & VM_WRITE:
        return pte_mkwrite(pte)
    return pte


def pte_needs_soft_dirty_wp(vma, pte) -> bool:
    """mm/internal.h:pte_needs_soft_dirty_wp (v7.0)."""
    return vma_soft_dirty_enabled(vma) and not pte.soft_dirty


def vma_page_prot_writable(vma) -> bool:
    """Whether vma->vm_page_prot carries _PAGE_RW: only shared writable mappings
    without write-notify (shmem needs none unless soft-dirty tracking is on)."""
    return bool(vma.vm_flags & VM_SHARED) and bool(vma.vm_flags & VM_WRITE) \
        and not vma_soft_dirty_enabled(vma)


class FaultOps:
    """mm/memory.c fault handling."""

    # -- entry ------------------------------------------------------------
    def sanitize_fault_flags(self, vma, flags: int):
        """mm/memory.c:sanitize_fault_flags (v7.0)."""
        if flags & FAULT_FLAG_UNSHARE:
            if flags & FAULT_FLAG_WRITE:
                return VM_FAULT_SIGSEGV, flags
            if not is_cow_mapping(vma.vm_flags):
                flags &= ~FAULT_FLAG_UNSHARE
        elif flags & FAULT_FLAG_WRITE:
            if not (vma.vm_flags & VM_MAYWRITE):
                return VM_FAULT_SIGSEGV, flags
            if not (vma.vm_flags & VM_WRITE) and not is_cow_mapping(vma.vm_flags):
                return VM_FAULT_SIGSEGV, flags
        return 0, flags

    async def handle_mm_fault(self, vma, address: int, flags: int) -> int:
        """mm/memory.c:handle_mm_fault (v7.0)."""
        ret, flags = self.sanitize_fault_flags(vma, flags)
        if ret:
            return ret
        self.fork_window_fault(True)                  # ghost: a fault handler runs
        try:
            return await self._handle_mm_fault(vma, address, flags)
        finally:
            self.fork_window_fault(False)

    async def _handle_mm_fault(self, vma, address: int, flags: int) -> int:
        """mm/memory.c:__handle_mm_fault (v7.0), PTE level only (no THP)."""
        vmf = VmFault(vma, address, flags)
        return await self.handle_pte_fault(vmf)

    async def handle_pte_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:handle_pte_fault (v7.0)."""
        mm = vmf.vma.vm_mm
        sched = self.sched
        if self.pmdp_get(mm, vmf.address) is None:
            vmf.ptep = None
            vmf.flags &= ~FAULT_FLAG_ORIG_PTE_VALID
        else:
            await sched.point("handle_pte_fault:ptep_get_lockless")
            vmf.ptep = self.pte_offset_map(mm, vmf.address)
            if vmf.ptep is None:
                return 0
            vmf.orig_pte = self.ptep_get(vmf.ptep)
            vmf.flags |= FAULT_FLAG_ORIG_PTE_VALID
            if vmf.orig_pte is None:
                vmf.ptep = None
        if vmf.ptep is None:
            return await self.do_pte_missing(vmf)
        if not vmf.orig_pte.present:
            return await self.do_swap_page(vmf)
        ptl = vmf.ptep.table.ptl
        await ptl.lock(sched, "handle_pte_fault:spin_lock(ptl)")
        entry = vmf.orig_pte
        if not pte_same(self.ptep_get(vmf.ptep), entry):
            ptl.unlock(sched)
            return 0
        if vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE):
            if not pte_write(entry):
                return await self.do_wp_page(vmf)
            elif vmf.flags & FAULT_FLAG_WRITE:
                entry = pte_mkdirty(entry)
        entry = pte_mkyoung(entry)
        if entry != vmf.orig_pte:          # ptep_set_access_flags
            self.set_pte_at(mm, vmf.address, vmf.ptep, entry)
        ptl.unlock(sched)
        return 0

    async def do_pte_missing(self, vmf: VmFault) -> int:
        """mm/memory.c:do_pte_missing (v7.0)."""
        if vma_is_anonymous(vmf.vma):
            return await self.do_anonymous_page(vmf)
        return await self.do_fault(vmf)

    def vmf_pte_changed(self, vmf: VmFault) -> bool:
        """mm/memory.c:vmf_pte_changed (v7.0)."""
        cur = self.ptep_get(vmf.ptep)
        if vmf.flags & FAULT_FLAG_ORIG_PTE_VALID:
            return not pte_same(cur, vmf.orig_pte)
        return cur is not None

    async def vmf_anon_prepare(self, vmf: VmFault) -> int:
        """mm/internal.h:vmf_anon_prepare + mm/memory.c:__vmf_anon_prepare (v7.0)."""
        vma = vmf.vma
        if vma.anon_vma:
            return 0
        mm = vma.vm_mm
        if vmf.flags & FAULT_FLAG_VMA_LOCK:
            if not mm.mmap_lock.down_read_trylock(self.sched):
                self.vma_end_read(vma)
                return VM_FAULT_RETRY
        ret = 0
        if self.sched.should_fail("__anon_vma_prepare:anon_vma_alloc"):
            ret = VM_FAULT_OOM
        else:
            vma.anon_vma = True
            self.sched.log_at(vma.vm_mm, "vma.anon_vma", vma.vm_start, False, True)
        if vmf.flags & FAULT_FLAG_VMA_LOCK:
            mm.mmap_lock.up_read(self.sched)
        return ret

    # -- anonymous memory ------------------------------------------------------
    async def do_anonymous_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_anonymous_page (v7.0), order-0 folios."""
        vma = vmf.vma
        mm = vma.vm_mm
        addr = vmf.address
        if vma.vm_flags & VM_SHARED:
            return VM_FAULT_SIGBUS
        if await self.pte_alloc(mm, addr, "do_anonymous_page"):
            return VM_FAULT_OOM
        if not (vmf.flags & FAULT_FLAG_WRITE):
            # Use the zero-page for reads
            entry = pte_mkspecial_zero(self.zero_folio)
            vmf.ptep = await self.pte_offset_map_lock(mm, addr,
                                                      "do_anonymous_page:pte_offset_map_lock")
            if vmf.ptep is None:
                return 0
            if self.vmf_pte_changed(vmf):
                self.pte_unmap_unlock(vmf.ptep)
                return 0
            self.set_pte_at(mm, addr, vmf.ptep, entry)
            self.pte_unmap_unlock(vmf.ptep)
            return 0
        ret = await self.vmf_anon_prepare(vmf)
        if ret:
            return ret
        folio = self.alloc_folio(ANON, "do_anonymous_page:alloc_anon_folio")
        if folio is None:
            return VM_FAULT_OOM
        entry = mk_pte(folio)
        if vma.vm_flags & VM_WRITE:
            entry = pte_mkwrite(pte_mkdirty(entry))
        vmf.ptep = await self.pte_offset_map_lock(mm, addr, "do_anonymous_page:pte_offset_map_lock")
        if vmf.ptep is None:
            self.folio_put(folio)
            return 0
        if self.vmf_pte_changed(vmf):
            self.pte_unmap_unlock(vmf.ptep)
            self.folio_put(folio)
            return 0
        self.folio_add_new_anon_rmap(folio, vma, addr, True)
        self.set_pte_at(mm, addr, vmf.ptep, entry)
        self.pte_unmap_unlock(vmf.ptep)
        return 0

    # -- file memory (shmem/memfd) -------------------------------------------
    async def do_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:do_fault (v7.0)."""
        if not (vmf.flags & FAULT_FLAG_WRITE):
            return await self.do_read_fault(vmf)
        if not (vmf.vma.vm_flags & VM_SHARED):
            return await self.do_cow_fault(vmf)
        return await self.do_shared_fault(vmf)

    async def _do_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:__do_fault -> shmem_fault (v7.0): the locked page-cache folio."""
        vma = vmf.vma
        file = vma.vm_file
        idx = vma.linear_page_index(vmf.address)
        if idx >= len(file.pages):
            return VM_FAULT_SIGBUS
        folio = file.pages[idx]
        self.folio_get(folio)
        await self.folio_lock(folio, "shmem_fault:folio_lock")
        vmf.page = folio
        return VM_FAULT_LOCKED

    async def do_read_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:do_read_fault (v7.0), without fault-around."""
        ret = await self._do_fault(vmf)
        if ret & (VM_FAULT_SIGBUS | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
            return ret
        ret = await self.finish_fault(vmf)
        folio = vmf.page
        self.folio_unlock(folio)
        if ret & (VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
            self.folio_put(folio)
        return ret

    async def do_cow_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:do_cow_fault (v7.0): private write to a file page."""
        ret = await self.vmf_anon_prepare(vmf)
        if ret:
            return ret
        folio = self.alloc_folio(ANON, "do_cow_fault:folio_prealloc")
        if folio is None:
            return VM_FAULT_OOM
        vmf.cow_page = folio
        ret = await self._do_fault(vmf)
        if ret & (VM_FAULT_SIGBUS | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
            self.folio_put(folio)
            return ret
        folio.data = vmf.page.data                 # copy_mc_user_highpage
        self.sched.log(folio, "data", 0, folio.data)
        ret = await self.finish_fault(vmf)
        self.folio_unlock(vmf.page)
        self.folio_put(vmf.page)
        if ret & (VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
            self.folio_put(folio)
        return ret

    async def do_shared_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:do_shared_fault (v7.0); shmem has no ->page_mkwrite."""
        ret = await self._do_fault(vmf)
        if ret & (VM_FAULT_SIGBUS | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
            return ret
        folio = vmf.page
        ret |= await self.finish_fault(vmf)
        if ret & (VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_NOPAGE | VM_FAULT_RETRY):
            self.folio_unlock(folio)
            self.folio_put(folio)
            return ret
        return ret | self.fault_dirty_shared_page(vmf)

    def fault_dirty_shared_page(self, vmf: VmFault) -> int:
        """mm/memory.c:fault_dirty_shared_page (v7.0): mark dirty, unlock."""
        folio = vmf.page
        self.folio_mark_dirty(folio)
        self.folio_unlock(folio)
        return 0

    async def finish_fault(self, vmf: VmFault) -> int:
        """mm/memory.c:finish_fault (v7.0), one page."""
        vma = vmf.vma
        mm = vma.vm_mm
        is_cow = bool(vmf.flags & FAULT_FLAG_WRITE) and not (vma.vm_flags & VM_SHARED)
        folio = vmf.cow_page if is_cow else vmf.page
        if self.pmdp_get(mm, vmf.address) is None:
            if await self.pte_alloc(mm, vmf.address, "finish_fault"):
                return VM_FAULT_OOM
        vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address, "finish_fault:pte_offset_map_lock")
        if vmf.ptep is None:
            return VM_FAULT_NOPAGE
        if self.vmf_pte_changed(vmf):
            self.pte_unmap_unlock(vmf.ptep)
            return VM_FAULT_NOPAGE
        self.set_pte_range(vmf, folio, vmf.address)
        self.pte_unmap_unlock(vmf.ptep)
        return 0

    def set_pte_range(self, vmf: VmFault, folio, addr: int) -> None:
        """mm/memory.c:set_pte_range (v7.0), one page."""
        vma = vmf.vma
        write = bool(vmf.flags & FAULT_FLAG_WRITE)
        entry = mk_pte(folio, write=vma_page_prot_writable(vma))
        if write:
            entry = maybe_mkwrite(pte_mkdirty(entry), vma)
        elif entry.write and folio.dirty:
            entry = pte_mkdirty(entry)
        if write and not (vma.vm_flags & VM_SHARED):
            self.folio_add_new_anon_rmap(folio, vma, addr, True)
        else:
            self.folio_add_file_rmap_pte(folio, vma)
        self.set_pte_at(vma.vm_mm, addr, vmf.ptep, entry)

    # -- write-protect faults --------------------------------------------------
    async def do_wp_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_wp_page (v7.0). Entered with the ptl held; drops it."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        ptl = vmf.ptep.table.ptl
        vmf.page = self.vm_normal_page(vma, vmf.address, vmf.orig_pte)
        folio = vmf.page
        if vma.vm_flags & (VM_SHARED | VM_MAYSHARE):
            # Shared mapping: we are guaranteed VM_WRITE and FAULT_FLAG_WRITE here.
            return await self.wp_page_shared(vmf, folio)
        # Private mapping: reuse an exclusive anonymous page, else copy.
        if folio is not None and folio.kind == ANON and \
                (folio.anon_exclusive or self.wp_can_reuse_anon_folio(folio, vma)):
            if not folio.anon_exclusive:
                self.SetPageAnonExclusive(folio)
            if unshare:
                ptl.unlock(self.sched)
                return 0
            self.wp_page_reuse(vmf, folio)
            return 0
        if folio is not None:
            self.folio_get(folio)
        ptl.unlock(self.sched)
        return await self.wp_page_copy(vmf)

    def wp_can_reuse_anon_folio(self, folio, vma) -> bool:
        """mm/memory.c:wp_can_reuse_anon_folio (v7.0): reuse iff ours is the only reference."""
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
        # "Ok, we've got the only folio reference from our mapping and the folio
        # is locked, it's dark out, and we're wearing sunglasses. Hit it."
        self.folio_move_anon_rmap(folio, vma)
        self.folio_unlock(folio)
        return True

    def wp_page_reuse(self, vmf: VmFault, folio) -> None:
        """mm/memory.c:wp_page_reuse (v7.0): make the PTE writable in place; drops the ptl."""
        if not (vmf.flags & FAULT_FLAG_WRITE):
            raise KernelBug("wp_page_reuse without FAULT_FLAG_WRITE", va=vmf.address)
        if folio is not None and folio.kind == ANON and not folio.anon_exclusive:
            raise KernelBug(f"wp_page_reuse of {folio.name} which is not PageAnonExclusive",
                            pfn=folio.pfn, va=vmf.address)
        entry = pte_mkyoung(vmf.orig_pte)
        entry = maybe_mkwrite(pte_mkdirty(entry), vmf.vma)
        self.set_pte_at(vmf.vma.vm_mm, vmf.address, vmf.ptep, entry)
        self.pte_unmap_unlock(vmf.ptep)

    async def wp_page_copy(self, vmf: VmFault) -> int:
        """mm/memory.c:wp_page_copy (v7.0): copy without the ptl, re-check, switch the
        PTE (ptep_clear_flush before set_pte_at), and only then drop the old mapcount."""
        unshare = bool(vmf.flags & FAULT_FLAG_UNSHARE)
        vma = vmf.vma
        mm = vma.vm_mm
        sched = self.sched
        old_folio = vmf.page
        ret = await self.vmf_anon_prepare(vmf)
        if ret:
            if old_folio is not None:
                self.folio_put(old_folio)
            return ret
        pfn_is_zero = self.is_zero_pfn(vmf.orig_pte)
        new_folio = self.alloc_folio(ANON, "wp_page_copy:folio_prealloc")
        if new_folio is None:
            if old_folio is not None:
                self.folio_put(old_folio)
            return VM_FAULT_OOM
        if not pfn_is_zero:
            await sched.point("wp_page_copy:__wp_page_copy_user")
            self.copy_user_page(new_folio, old_folio, vmf)
        vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address,
                                                  "wp_page_copy:pte_offset_map_lock")
        page_copied = False
        if vmf.ptep is not None and pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte):
            entry = mk_pte(new_folio)
            if unshare:
                if vmf.orig_pte.soft_dirty:
                    entry = pte_mksoft_dirty(entry)
            else:
                entry = maybe_mkwrite(pte_mkdirty(entry), vma)
            # Clear the pte entry and flush it first, before updating the pte with
            # the new entry, to keep TLBs on different CPUs in sync.
            await self.ptep_clear_flush(vma, vmf.address, vmf.ptep, "wp_page_copy:ptep_clear_flush")
            self.folio_add_new_anon_rmap(new_folio, vma, vmf.address, True)
            if unshare and pte_write(entry):
                raise KernelBug("wp_page_copy: unshare installs a writable PTE",
                                va=vmf.address, pfn=new_folio.pfn)
            self.set_pte_at(mm, vmf.address, vmf.ptep, entry)
            if old_folio is not None:
                # Only after switching the pte to the new page may we remove the
                # mapcount here.
                self.folio_remove_rmap_pte(old_folio, vma)
            new_folio = old_folio
            page_copied = True
            self.pte_unmap_unlock(vmf.ptep)
        elif vmf.ptep is not None:
            self.pte_unmap_unlock(vmf.ptep)
        if new_folio is not None:
            self.folio_put(new_folio)
        if old_folio is not None:
            if page_copied:
                self.free_swap_cache(old_folio)
            self.folio_put(old_folio)
        return 0

    def copy_user_page(self, new_folio, old_folio, vmf: VmFault) -> None:
        """__wp_page_copy_user -> copy_mc_user_highpage: copy the contents."""
        if old_folio.freed:
            self.bug(f"wp_page_copy reads freed page {old_folio.name}", pfn=old_folio.pfn)
        new_folio.data = old_folio.data
        self.sched.log(new_folio, "data", 0, new_folio.data)

    def free_swap_cache(self, folio) -> None:
        """mm/swap_state.c:free_swap_cache (v7.0): drop an unmapped folio's swap cache."""
        if folio.swapcache and not folio.mapcount and self.folio_trylock(folio):
            self.folio_free_swap(folio)
            self.folio_unlock(folio)

    async def wp_page_shared(self, vmf: VmFault, folio) -> int:
        """mm/memory.c:wp_page_shared (v7.0); shmem has no ->page_mkwrite."""
        self.folio_get(folio)
        self.wp_page_reuse(vmf, folio)
        await self.folio_lock(folio, "wp_page_shared:folio_lock")
        vmf.page = folio
        ret = self.fault_dirty_shared_page(vmf)
        self.folio_put(folio)
        return ret

    # -- swap-in ---------------------------------------------------------------
    async def folio_lock_or_retry(self, folio, vmf: VmFault) -> int:
        """include/linux/pagemap.h:folio_lock_or_retry + mm/filemap.c:__folio_lock_or_retry."""
        if self.folio_trylock(folio):
            return 0
        flags = vmf.flags
        if (flags & FAULT_FLAG_ALLOW_RETRY) and not (flags & FAULT_FLAG_TRIED):
            if flags & FAULT_FLAG_RETRY_NOWAIT:
                return VM_FAULT_RETRY
            self.release_fault_lock(vmf)
            await self.sched.point("folio_wait_locked")
            self.sleep_on_own_read(folio)
            while folio.locked:
                await self.sched.wait(folio, "folio_wait_locked")
            return VM_FAULT_RETRY
        if folio.read_in_flight is self.sched.current:
            await self.sched.point("__folio_lock")
            self.sleep_on_own_read(folio)
            self.folio_trylock(folio)
            return 0
        await self.folio_lock(folio, "__folio_lock")
        return 0

    def release_fault_lock(self, vmf: VmFault) -> None:
        """include/linux/mm.h:release_fault_lock (v7.0)."""
        if vmf.flags & FAULT_FLAG_VMA_LOCK:
            self.vma_end_read(vmf.vma)
        else:
            vmf.vma.vm_mm.mmap_lock.up_read(self.sched)

    async def do_swap_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_swap_page (v7.0), order 0: the swap-cache folio (read in, with
        the folio locked across the read, when it was not there), locked; map it
        (folio_put_swap before set_pte_at); then maybe free the swap cache
        (should_try_to_free_swap: on any fault for a SWP_SYNCHRONOUS_IO device or a
        swap device more than half full, else on a write fault that holds the only
        other reference)."""
        vma = vmf.vma
        mm = vma.vm_mm
        entry = vmf.orig_pte.swp
        ret = 0
        si = self.swap_info
        folio = self.swap_cache_get_folio(entry)
        if folio is None:
            # Swapin bypasses readahead for SWP_SYNCHRONOUS_IO devices
            if si.flags & SWP_SYNCHRONOUS_IO:
                folio = await self.swapin_sync(entry, "do_swap_page")
            else:
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
        # folio_matches_swap_entry: free_swap or swapoff may have released it
        if not folio.swapcache or folio.swap != entry:
            self.folio_unlock(folio)
            self.folio_put(folio)
            return ret
        vmf.ptep = await self.pte_offset_map_lock(mm, vmf.address, "do_swap_page:pte_offset_map_lock")
        if vmf.ptep is None or not pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte) or \
                not folio.uptodate:
            if vmf.ptep is not None:
                if not folio.uptodate and pte_same(self.ptep_get(vmf.ptep), vmf.orig_pte):
                    ret = VM_FAULT_SIGBUS
                self.pte_unmap_unlock(vmf.ptep)
            # out_page
            if folio.swapcache:
                self.folio_free_swap(folio)
            self.folio_unlock(folio)
            self.folio_put(folio)
            return ret
        # A swap pte must never point at an anonymous page in the swapcache that
        # is PG_anon_exclusive.
        if folio.anon_exclusive:
            raise KernelBug(f"do_swap_page: swap cache {folio.name} is PageAnonExclusive",
                            pfn=folio.pfn, va=vmf.address)
        # Check under PT lock (to protect against concurrent fork() sharing the swap
        # entry concurrently) for certainly exclusive pages.
        exclusive = vmf.orig_pte.swp_exclusive
        if folio is not swapcache:
            exclusive = True
        elif exclusive and folio.writeback and si.flags & SWP_STABLE_WRITES:
            # This is tricky: not all swap backends support concurrent page
            # modifications while under writeback.
            exclusive = False
        pte = mk_pte(folio)
        if vmf.orig_pte.soft_dirty:
            pte = pte_mksoft_dirty(pte)
        exclusive_map = False
        if exclusive or folio._refcount == 1:
            if (vma.vm_flags & VM_WRITE) and not pte_needs_soft_dirty_wp(vma, pte):
                pte = pte_mkwrite(pte)
                if vmf.flags & FAULT_FLAG_WRITE:
                    pte = pte_mkdirty(pte)
                    vmf.flags &= ~FAULT_FLAG_WRITE
            exclusive_map = True
        vmf.orig_pte = pte
        if folio.index is None:
            # a folio fresh from the swap device has no anon mapping yet
            self.folio_add_new_anon_rmap(folio, vma, vmf.address, exclusive_map)
        else:
            self.folio_add_anon_rmap_pte(folio, vma, vmf.address, exclusive_map)
        self.folio_put_swap(folio)
        if folio.kind != ANON or (pte.write and not folio.anon_exclusive):
            raise KernelBug("do_swap_page maps a writable page that is not PageAnonExclusive",
                            pfn=folio.pfn, va=vmf.address)
        self.set_pte_at(mm, vmf.address, vmf.ptep, pte)
        # Remove the swap entry and conditionally try to free up the swapcache. Do it
        # after mapping so any raced page fault will see the folio in swap cache and
        # wait for us.
        if self.should_try_to_free_swap(si, folio, vma, 1, vmf.flags):
            self.folio_free_swap(folio)
        self.folio_unlock(folio)
        if vmf.flags & FAULT_FLAG_WRITE:
            ret |= await self.do_wp_page(vmf)
            return ret
        self.pte_unmap_unlock(vmf.ptep)
        return ret

    def should_try_to_free_swap(self, si, folio, vma, extra_refs: int, fault_flags: int) -> bool:
        """mm/memory.c:should_try_to_free_swap (v7.0). No memcg and no mlock in the model:
        mem_cgroup_swap_full is vm_swap_full."""
        if not folio.swapcache:
            return False
        # Always try to free swap cache for SWP_SYNCHRONOUS_IO devices: the swap cache
        # pinning the slot is the more critical issue for them.
        if si.flags & SWP_SYNCHRONOUS_IO:
            return True
        if self.vm_swap_full():
            return True
        # If we want to map a page that's in the swapcache writable, we have to detect
        # via the refcount if we're really the exclusive user. Try freeing the swapcache
        # to get rid of the swapcache reference only in case it's likely that we'll be
        # the exclusive user.
        return bool(fault_flags & FAULT_FLAG_WRITE) and \
            folio._refcount == extra_refs + 1
