"""Swap slots, the swap cache, and swap I/O.

Mirrors mm/swapfile.c, mm/swap_state.c and mm/page_io.c (v7.0) for one swap
device of SWAP_PAGES slots:

* a slot's ``count`` is its swap count: one per swap PTE referencing it;
* ``has_cache`` / ``folio``: the slot's folio in the swap cache, which holds
  one folio reference and pins the slot; a slot is freed once it has
  neither;
* ``data`` is what was last written to the device;
* slots are numbered 1..SWAP_PAGES and handed out lowest free first, so an
  entry freed is soon another page's: a racing fault's pte_same and the
  swap cache's folio_matches_swap_entry are what keep it apart.

The device (swapon) is a disk or zram. v7.0 never bypasses the swap cache,
not even for SWP_SYNCHRONOUS_IO ("mm, swap: never bypass the swap cache even
for SWP_SYNCHRONOUS_IO", the swap table series): every swap-in allocates a
folio locked, adds it to the swap cache and reads into it
(swap_cache_alloc_folio, swap_read_folio), and the read completes -- PG_uptodate,
folio_unlock -- a scheduling point later, so a fault on the same entry finds
the folio locked in the swap cache and waits. zram (SWP_SYNCHRONOUS_IO |
SWP_STABLE_WRITES) reads without readahead (swapin_sync; the model reads one
page either way) and do_swap_page always frees its swap cache after mapping
(should_try_to_free_swap, "mm, swap: always try to free swap cache for
SWP_SYNCHRONOUS_IO devices"); a disk frees it on a read fault only when swap
is more than half full (vm_swap_full). Swap-out writes under PG_writeback
with the folio unlocked (swap_writeout); a folio under writeback never
leaves the swap cache (folio_swapcache_freeable), and on a stable-writes
device a fault maps it only read-only, not exclusive.
"""

from __future__ import annotations

from model.oracles.errors import Accounting, KernelBug, UseAfterFree
from model.mm import SwapSlot
from model.page import ANON

#: slots of the swap device (small, so that vm_swap_full and a full device happen)
SWAP_PAGES = 4

# -- swap_info_struct flags (include/linux/swap.h, v7.0) --
SWP_STABLE_WRITES = 1 << 11      # no overwrite PG_writeback pages
SWP_SYNCHRONOUS_IO = 1 << 12     # synchronous IO is efficient

DISK = "disk"
ZRAM = "zram"
SWAP_DEVICES = (DISK, ZRAM)


class SwapInfo:
    """struct swap_info_struct of the one swap device: its size and flags."""

    __slots__ = ("device", "pages", "flags")

    def __init__(self, device: str = DISK, pages: int = SWAP_PAGES):
        self.device = device
        self.pages = pages
        # swapon: zram's queue has BLK_FEAT_STABLE_WRITES | BLK_FEAT_SYNCHRONOUS
        self.flags = SWP_STABLE_WRITES | SWP_SYNCHRONOUS_IO if device == ZRAM else 0

    def __repr__(self) -> str:
        return self.device


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

    def swapon(self, device: str) -> None:
        """mm/swapfile.c:swapon (v7.0): the swap device programs swap to."""
        self.swap_info = SwapInfo(device)

    def vm_swap_full(self) -> bool:
        """include/linux/swap.h:vm_swap_full (v7.0): more than half of swap is in use."""
        free = self.swap_info.pages - len(self.swap_slots)
        return free * 2 < self.swap_info.pages

    def folio_alloc_swap(self, folio, label: str) -> bool:
        """mm/swapfile.c:folio_alloc_swap (v7.0): a slot + add to the swap cache.
        Returns False on failure (no free slot, or -ENOMEM)."""
        if len(self.swap_slots) >= self.swap_info.pages:
            return False
        if self.sched.should_fail(label):
            return False
        # the lowest free slot: a freed entry comes back soon, as the kernel's
        # allocator hands out freed offsets again (swap entries can meet ABA)
        slot = SwapSlot(next(e for e in range(1, self.swap_info.pages + 1)
                             if e not in self.swap_slots))
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

    async def swap_cache_alloc_folio(self, entry: int, label: str):
        """mm/swap_state.c:swap_cache_alloc_folio (v7.0), order 0: the folio already in
        the swap cache (-EEXIST: look it up again), or a new one, locked and not uptodate,
        added to the swap cache. Returned with the caller's reference; the second value
        says whether the caller must read it."""
        folio = self.swap_cache_get_folio(entry)
        if folio is not None:
            return folio, False
        # the allocation may sleep (GFP_KERNEL): the entry read from the PTE can be
        # freed, and even handed out again, before swapcache_prepare claims it
        await self.sched.point("swap_cache_alloc_folio:folio_alloc_mpol")
        slot = self.swap_slots.get(entry)
        if slot is None:                 # swapcache_prepare: -ENOENT, the entry was freed
            return None, False
        folio = self.swap_cache_get_folio(entry)
        if folio is not None:            # swapcache_prepare: -EEXIST, someone else added it
            return folio, False
        folio = self.alloc_folio(ANON, label + ":swap_cache_alloc_folio")
        if folio is None:
            return None, False
        folio.locked = True                              # __folio_set_locked
        self.sched.log(folio, "locked", False, True)
        folio.uptodate = False
        self.sched.log(folio, "uptodate", True, False)
        self.swap_cache_add_folio(folio, slot)
        return folio, True

    async def swap_read_folio(self, folio, synchronous: bool) -> None:
        """mm/page_io.c:swap_read_folio (v7.0): submit the read of the locked folio; the
        bio's completion (end_swap_bio_read) fills it, marks it uptodate and unlocks it.
        zram reads synchronously (swap_read_folio_bdev_sync): the read is done when this
        returns. A disk reads asynchronously (swap_read_folio_bdev_async): the folio
        comes back locked with the read in flight, and the bio completes while the task
        that submitted it sleeps on the folio (do_swap_page's folio_lock_or_retry,
        after it dropped its fault lock) -- a disk is slower than the path there."""
        if synchronous:
            await self.sched.point("swap_read_folio_bdev_sync:submit_bio_wait")
            self.end_swap_bio_read(folio)
            return
        await self.sched.point("swap_read_folio_bdev_async:submit_bio")
        folio.read_in_flight = self.sched.current

    def end_swap_bio_read(self, folio) -> None:
        """mm/page_io.c:end_swap_bio_read -> folio_end_read (v7.0): the slot's contents
        land in the folio, which becomes uptodate and is unlocked."""
        folio.read_in_flight = None
        slot = self._slot(folio.swap)
        self.sched.log(folio, "data", folio.data, slot.data)
        folio.data = slot.data
        self.folio_mark_uptodate(folio)
        self.folio_unlock(folio)

    def sleep_on_own_read(self, folio) -> None:
        """The current task sleeps on ``folio``: a disk read it submitted completes."""
        if folio.read_in_flight is self.sched.current:
            self.end_swap_bio_read(folio)

    async def swapin_readahead(self, entry: int, vmf_label: str):
        """mm/swap_state.c:swapin_readahead (v7.0), a window of one page: the swap-cache
        folio for ``entry``, read in if it was not there, with the caller's reference."""
        folio, new = await self.swap_cache_alloc_folio(entry, vmf_label)
        if new:
            await self.swap_read_folio(folio, False)
        return folio

    async def swapin_sync(self, entry: int, vmf_label: str):
        """mm/swap_state.c:swapin_sync (v7.0), order 0: SWP_SYNCHRONOUS_IO swaps in
        without readahead -- still through the swap cache."""
        folio, new = await self.swap_cache_alloc_folio(entry, vmf_label)
        if new:
            await self.swap_read_folio(folio, True)
        return folio

    async def swap_writeout(self, folio) -> None:
        """mm/page_io.c:swap_writeout -> __swap_writepage (v7.0) for a locked folio: drop
        the swap cache instead when no swap PTE is left; else write it under PG_writeback
        with the folio unlocked. The bio's completion (__end_swap_bio_write) ends the
        writeback; zram completes before returning, a disk later -- here, a scheduling
        point later, before shrink_folio_list looks at the folio again."""
        if self.folio_free_swap(folio):
            self.folio_unlock(folio)
            return
        entry = folio.swap
        self.folio_start_writeback(folio)
        self.folio_unlock(folio)
        slot = self._slot(entry)
        self.sched.log(slot, "data", slot.data, folio.data)
        slot.data = folio.data
        synchronous = bool(self.swap_info.flags & SWP_SYNCHRONOUS_IO)
        await self.sched.point("swap_writepage_bdev_sync:submit_bio_wait" if synchronous
                               else "swap_writepage_bdev_async:submit_bio")
        if self.swap_slots.get(entry) is not slot:
            raise UseAfterFree(f"swap writeback of {folio.name} completes to freed swap slot "
                               f"swp{entry}", pfn=folio.pfn, swp=entry)
        self.folio_end_writeback(folio)                  # __end_swap_bio_write

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
        """mm/swapfile.c:__try_to_reclaim_swap (v7.0, TTRS_UNMAPPED | TTRS_FULL): free the
        cache folio if it is unmapped, or, mapped or not, if swap is more than half full."""
        if not self.folio_try_get(folio):
            return
        if self.folio_trylock(folio):
            if not folio.mapcount or self.vm_swap_full():
                self.folio_free_swap(folio)
            self.folio_unlock(folio)
        self.folio_put(folio)

    def folio_swapcache_freeable(self, folio) -> bool:
        """mm/swapfile.c:folio_swapcache_freeable (v7.0): never while the folio is under
        writeback (the write in flight still targets its slot)."""
        if not folio.locked:
            raise KernelBug("folio_free_swap on an unlocked folio", pfn=folio.pfn)
        if not folio.swapcache:
            return False
        return not folio.writeback

    def folio_free_swap(self, folio) -> bool:
        """mm/swapfile.c:folio_free_swap (v7.0): drop the swap cache if no swap PTE
        references the slot any more (folio_maybe_swapped). The folio must be locked."""
        if not self.folio_swapcache_freeable(folio):
            return False
        slot = self._slot(folio.swap)
        if slot.count:
            return False
        self.swap_cache_del_folio(folio)
        self.folio_mark_dirty(folio)
        return True
