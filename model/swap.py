"""Swap slots and the swap cache.

Mirrors mm/swapfile.c and mm/swap_state.c (v7.0) for one swap device
without SWP_SYNCHRONOUS_IO (swap-in reads through the swap cache):

* a slot's ``count`` is its swap_map count: one per swap PTE referencing it;
* ``has_cache`` / ``folio``: the slot's folio in the swap cache, which holds
  one folio reference; a slot is freed once it has neither;
* ``data`` is what pageout() wrote to the device.
"""

from __future__ import annotations

from model.oracles.errors import Accounting, KernelBug
from model.mm import SwapSlot
from model.page import ANON


class SwapOps:
    """Swap cache and swap_map maintenance."""

    def _slot(self, entry: int) -> SwapSlot:
        slot = self.swap_slots.get(entry)
        if slot is None:
            raise KernelBug(f"reference to freed swap slot swp{entry}", swp=entry)
        return slot

    def _maybe_free_slot(self, slot: SwapSlot) -> None:
        if slot.count == 0 and not slot.has_cache:
            del self.swap_slots[slot.slot]
            self.sched.log(slot, "freed", False, True)

    def folio_alloc_swap(self, folio, label: str) -> bool:
        """mm/swapfile.c:folio_alloc_swap (v7.0): a slot + add to the swap cache.
        Returns False on failure (no slot / -ENOMEM)."""
        if self.sched.should_fail(label):
            return False
        slot = SwapSlot(self.next_slot)
        self.next_slot += 1
        self.swap_slots[slot.slot] = slot
        self.sched.log(slot, "alloc", None, folio.name)
        self.swap_cache_add_folio(folio, slot)
        return True

    def swap_cache_add_folio(self, folio, slot: SwapSlot) -> None:
        """mm/swap_state.c:swap_cache_add_folio: the cache holds a reference."""
        self.folio_ref_add(folio, 1)
        folio.swapcache = True
        folio.swap = slot.slot
        slot.has_cache = True
        slot.folio = folio
        self.sched.log(folio, "swapcache", False, slot.name)

    def swap_cache_del_folio(self, folio) -> None:
        """mm/swap_state.c:swap_cache_del_folio + the cache's folio_put."""
        slot = self._slot(folio.swap)
        slot.folio = None
        slot.has_cache = False
        folio.swapcache = False
        self.sched.log(folio, "swapcache", slot.name, False)
        folio.swap = None
        self._maybe_free_slot(slot)
        self.folio_put(folio)

    def swap_cache_get_folio(self, entry: int):
        """mm/swap_state.c:swap_cache_get_folio (v7.0): takes a reference."""
        slot = self.swap_slots.get(entry)
        if slot is None or slot.folio is None:
            return None
        folio = slot.folio
        if self.folio_try_get(folio):
            return folio
        return None

    async def swapin_readahead(self, entry: int, vmf_label: str):
        """mm/swap_state.c:swapin_readahead (one page): read the slot into a new
        swap-cache folio, returned with the caller's reference (cache + caller = 2)."""
        slot = self._slot(entry)
        folio = self.alloc_folio(ANON, vmf_label + ":alloc_swap_folio", slot.data)
        if folio is None:
            return None
        # read_swap_cache_async: add to the swap cache, then read the data
        self.swap_cache_add_folio(folio, slot)
        return folio

    def folio_dup_swap(self, folio) -> int:
        """mm/swapfile.c:folio_dup_swap (v7.0): one more swap PTE references the entry."""
        if not folio.swapcache:
            raise KernelBug("folio_dup_swap of a folio not in the swap cache", pfn=folio.pfn)
        slot = self._slot(folio.swap)
        self.sched.log(slot, "count", slot.count, slot.count + 1)
        slot.count += 1
        return 0

    def folio_put_swap(self, folio) -> None:
        """mm/swapfile.c:folio_put_swap (v7.0): a swap PTE was replaced by a mapping;
        the slot stays pinned by the swap cache."""
        slot = self._slot(folio.swap)
        if slot.count <= 0:
            raise Accounting(f"swap count of {slot.name} drops below zero", swp=slot.slot)
        self.sched.log(slot, "count", slot.count, slot.count - 1)
        slot.count -= 1

    def swap_dup_entry_direct(self, entry: int) -> int:
        """mm/swapfile.c:swap_dup_entry_direct (v7.0): fork copied a swap PTE."""
        slot = self._slot(entry)
        self.sched.log(slot, "count", slot.count, slot.count + 1)
        slot.count += 1
        return 0

    def swap_put_entries_direct(self, entry: int) -> None:
        """mm/swapfile.c:swap_put_entries_direct (v7.0): zap dropped a swap PTE; free
        the slot, reclaiming its cache folio when nothing references it any more."""
        slot = self._slot(entry)
        if slot.count <= 0:
            raise Accounting(f"swap count of {slot.name} drops below zero", swp=entry)
        self.sched.log(slot, "count", slot.count, slot.count - 1)
        slot.count -= 1
        if slot.count == 0 and slot.folio is not None:
            self._try_to_reclaim_swap(slot.folio)
            return
        self._maybe_free_slot(slot)

    def _try_to_reclaim_swap(self, folio) -> None:
        """mm/swapfile.c:__try_to_reclaim_swap (TTRS_UNMAPPED): free an unmapped cache folio."""
        if not self.folio_try_get(folio):
            return
        if self.folio_trylock(folio):
            if not folio.mapcount:
                self.folio_free_swap(folio)
            self.folio_unlock(folio)
        self.folio_put(folio)

    def folio_free_swap(self, folio) -> bool:
        """mm/swapfile.c:folio_free_swap (v7.0): drop the swap cache if no swap PTE
        references the slot any more. The folio must be locked."""
        if not folio.locked:
            raise KernelBug("folio_free_swap on an unlocked folio", pfn=folio.pfn)
        if not folio.swapcache:
            return False
        slot = self._slot(folio.swap)
        if slot.count:
            return False
        self.swap_cache_del_folio(folio)
        self.folio_mark_dirty(folio)
        return True
