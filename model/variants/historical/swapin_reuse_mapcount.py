"""The historical variant swapin-reuse-mapcount: its class docstring tells the bug and its fix.

What it changes against upstream, function by function: docs/variants/swapin-reuse-mapcount.diff.
"""

from __future__ import annotations

from model.oracles.errors import Accounting, KernelBug
from model.flags import (FAULT_FLAG_WRITE, VM_FAULT_MAJOR, VM_FAULT_OOM, VM_FAULT_RETRY,
                         VM_FAULT_SIGBUS, VM_WRITE)
from model.kernel import Kernel
from model.memory import VmFault, maybe_mkwrite, pte_needs_soft_dirty_wp
from model.page import ANON
from model.pgtable import mk_pte, pte_mkdirty, pte_mksoft_dirty, pte_mkwrite, pte_same
from model.swap import SWP_STABLE_WRITES, SWP_SYNCHRONOUS_IO
from model.variants import register
from model.variants.historical.common import _ReuseSwapPage


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
    post-map swap-cache freeing is v5.17's (only when swap is more than half full,
    with no memcg or mlock in the model). Swap-in itself (the swap cache, zram)
    and do_wp_page are v7.0's.
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

    async def do_swap_page(self, vmf: VmFault) -> int:
        """mm/memory.c:do_swap_page (v5.17 reuse and order) on the v7.0 model."""
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
            # a folio fresh from the swap device has no anon mapping yet
            self.folio_add_new_anon_rmap(folio, vma, vmf.address, exclusive_map)
        else:
            self.folio_add_anon_rmap_pte(folio, vma, vmf.address, exclusive_map)
        self.swap_free(entry)
        if folio.kind != ANON or (pte.write and not folio.anon_exclusive):
            raise KernelBug("do_swap_page maps a writable page that is not PageAnonExclusive",
                            pfn=folio.pfn, va=vmf.address)
        self.set_pte_at(mm, vmf.address, vmf.ptep, pte)
        # v5.17: try_to_free_swap() only if mem_cgroup_swap_full(), VM_LOCKED or
        # PageMlocked() -- of which the model has the first (vm_swap_full)
        if self.vm_swap_full():
            self.folio_free_swap(folio)
        self.folio_unlock(folio)
        if vmf.flags & FAULT_FLAG_WRITE:
            ret |= await self.do_wp_page(vmf)
            return ret
        self.pte_unmap_unlock(vmf.ptep)
        return ret
