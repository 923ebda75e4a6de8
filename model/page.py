"""struct folio / struct page for order-0 (base page) folios.

Mirrors include/linux/mm_types.h and include/linux/page-flags.h (v6.x):

* ``_refcount`` is the real count (the kernel's is not biased either). A
  FOLL_PIN on a small folio adds GUP_PIN_COUNTING_BIAS; FOLL_GET adds 1;
  every PTE mapping holds one; the swap cache holds one.
* ``mapcount`` is folio_mapcount(): the number of PTEs mapping the page.
  The kernel stores ``_mapcount`` biased by -1; the model stores the count.
* ``anon_exclusive`` is PG_anon_exclusive (PageAnonExclusive).
* ``data`` is the page's contents: one value token (see model/oracles/spec.py).
* ``uptodate`` (PG_uptodate) is False while a swap-in read is in flight;
  ``writeback`` (PG_writeback) is set while a swap write is in flight.

Every state change goes through the ``PageOps`` methods, which log it to
the scheduler so traces show it and oracles can check it.
"""

from __future__ import annotations

from model.oracles.errors import Accounting, UseAfterFree, VM_BUG_ON

GUP_PIN_COUNTING_BIAS = 1 << 10   # include/linux/mm.h

ANON = "anon"
FILE = "file"
ZERO = "zero"


class Folio:
    """One base page. ``pfn`` is its identity in traces; pfns are never reused."""

    __slots__ = ("pfn", "kind", "_refcount", "mapcount", "anon_exclusive", "locked",
                 "swapcache", "swap", "mapping", "index", "data", "dirty", "freed",
                 "waiters", "lru", "uptodate", "writeback", "read_in_flight")

    def __init__(self, pfn: int, kind: str, data: int = 0):
        self.pfn = pfn
        self.kind = kind
        self._refcount = 1
        self.mapcount = 0
        self.anon_exclusive = False
        self.locked = False          # PG_locked
        self.swapcache = False       # PG_swapcache
        self.swap = None             # the swap slot while in the swap cache
        self.mapping = None          # the File of a page-cache page
        self.index = None            # page offset in the file, or the anon address once mapped
        self.data = data
        self.dirty = False           # PG_dirty
        self.freed = False
        self.waiters = []            # tasks sleeping in folio_lock() / folio_wait_writeback()
        self.lru = True              # on an LRU list (not isolated)
        self.uptodate = True         # PG_uptodate: a swap-in read has completed
        self.writeback = False       # PG_writeback: a swap write is in flight
        self.read_in_flight = None   # the task whose disk read into the folio is in flight

    @property
    def name(self) -> str:
        return f"pfn{self.pfn}"

    def __repr__(self) -> str:
        return self.name


def folio_test_anon(folio: Folio) -> bool:
    return folio.kind == ANON


def PageAnonExclusive(folio: Folio) -> bool:
    return folio.anon_exclusive


def folio_ref_count(folio: Folio) -> int:
    return folio._refcount


def folio_mapcount(folio: Folio) -> int:
    return folio.mapcount


def folio_mapped(folio: Folio) -> bool:
    return folio.mapcount > 0


def folio_maybe_dma_pinned(folio: Folio) -> bool:
    """include/linux/mm.h:folio_maybe_dma_pinned (v6.x), small-folio case."""
    return folio._refcount >= GUP_PIN_COUNTING_BIAS


def folio_test_swapcache(folio: Folio) -> bool:
    return folio.swapcache


def is_zero_folio(folio: Folio) -> bool:
    return folio.kind == ZERO


class PageOps:
    """Reference, mapcount and flag updates (mm/swap.c, include/linux/mm.h, page-flags.h)."""

    def _check_live(self, folio: Folio, what: str) -> None:
        if folio.freed:
            raise UseAfterFree(f"{what} on freed page {folio.name}", pfn=folio.pfn)

    def folio_ref_add(self, folio: Folio, nr: int) -> None:
        if folio.kind == ZERO:
            return    # the shared zero page is never freed; its count is not modelled
        self._check_live(folio, "folio_ref_add")
        old = folio._refcount
        folio._refcount = old + nr
        self.sched.log(folio, "_refcount", old, old + nr)

    def folio_get(self, folio: Folio) -> None:
        """include/linux/mm.h:folio_get (v6.x)."""
        if folio.kind == ZERO:
            return    # the zero page is never refcounted through its mappings
        VM_BUG_ON(folio._refcount <= 0, "folio_get on a page with zero refcount", pfn=folio.pfn)
        self.folio_ref_add(folio, 1)

    def folio_try_get(self, folio: Folio) -> bool:
        """include/linux/page_ref.h:folio_try_get (v6.x): fails once the count hit zero."""
        if folio._refcount == 0:
            return False
        self.folio_ref_add(folio, 1)
        return True

    def folio_put_refs(self, folio: Folio, nr: int) -> None:
        """include/linux/mm.h:folio_put_refs (v6.x): drop refs, free the page at zero."""
        if folio.kind == ZERO:
            return
        self._check_live(folio, "folio_put")
        old = folio._refcount
        new = old - nr
        if new < 0:
            raise Accounting(f"refcount of {folio.name} drops below zero ({old} - {nr})",
                             pfn=folio.pfn)
        folio._refcount = new
        self.sched.log(folio, "_refcount", old, new)
        if new == 0:
            self.free_folio(folio)

    def folio_put(self, folio: Folio) -> None:
        self.folio_put_refs(folio, 1)

    def free_folio(self, folio: Folio) -> None:
        """mm/page_alloc.c:free_unref_folios: the page goes back to the allocator."""
        if folio.mapcount:
            raise Accounting(f"{folio.name} freed while still mapped (mapcount {folio.mapcount})",
                             pfn=folio.pfn)
        if folio.swapcache:
            raise Accounting(f"{folio.name} freed while in the swap cache", pfn=folio.pfn)
        # free_pages_prepare -> free_page_is_bad: PG_locked and PG_writeback are in
        # PAGE_FLAGS_CHECK_AT_FREE
        VM_BUG_ON(folio.locked, f"Bad page state: {folio.name} freed while locked",
                  pfn=folio.pfn)
        VM_BUG_ON(folio.writeback, f"Bad page state: {folio.name} freed under writeback",
                  pfn=folio.pfn)
        folio.freed = True
        self.sched.log(folio, "freed", False, True)

    def folio_mapcount_add(self, folio: Folio, nr: int) -> None:
        """The atomic_add on folio->_mapcount done by the rmap functions."""
        if folio.kind == ZERO:
            return
        self._check_live(folio, "rmap")
        old = folio.mapcount
        new = old + nr
        if new < 0:
            raise Accounting(f"mapcount of {folio.name} drops below zero", pfn=folio.pfn)
        folio.mapcount = new
        self.sched.log(folio, "mapcount", old, new)

    def SetPageAnonExclusive(self, folio: Folio) -> None:
        VM_BUG_ON(folio.kind != ANON, "SetPageAnonExclusive on a non-anon page", pfn=folio.pfn)
        if not folio.anon_exclusive:
            folio.anon_exclusive = True
            self.sched.log(folio, "PageAnonExclusive", False, True)

    def ClearPageAnonExclusive(self, folio: Folio) -> None:
        if folio.anon_exclusive:
            folio.anon_exclusive = False
            self.sched.log(folio, "PageAnonExclusive", True, False)

    def folio_mark_dirty(self, folio: Folio) -> None:
        if not folio.dirty:
            folio.dirty = True
            self.sched.log(folio, "dirty", False, True)

    # -- PG_locked: mm/filemap.c folio_lock / folio_trylock / folio_unlock --
    def folio_trylock(self, folio: Folio) -> bool:
        if folio.locked:
            return False
        folio.locked = True
        self.sched.log(folio, "locked", False, True)
        return True

    async def folio_lock(self, folio: Folio, label: str) -> None:
        """mm/filemap.c:folio_lock (v6.x): sleeps until PG_locked is clear."""
        await self.sched.point(label)
        while folio.locked:
            await self.sched.wait(folio, label)
        folio.locked = True
        self.sched.log(folio, "locked", False, True)

    def folio_mark_uptodate(self, folio: Folio) -> None:
        if not folio.uptodate:
            folio.uptodate = True
            self.sched.log(folio, "uptodate", False, True)

    def folio_start_writeback(self, folio: Folio) -> None:
        """mm/page-writeback.c:__folio_start_writeback (v7.0): PG_writeback, on a locked
        folio."""
        VM_BUG_ON(not folio.locked, "folio_start_writeback of an unlocked folio", pfn=folio.pfn)
        folio.writeback = True
        self.sched.log(folio, "writeback", False, True)

    def folio_end_writeback(self, folio: Folio) -> None:
        """mm/filemap.c:folio_end_writeback (v7.0): clear PG_writeback, wake the waiters."""
        VM_BUG_ON(not folio.writeback, "folio_end_writeback without writeback", pfn=folio.pfn)
        folio.writeback = False
        self.sched.log(folio, "writeback", True, False)
        self.sched.wake_all(folio)

    def folio_unlock(self, folio: Folio) -> None:
        VM_BUG_ON(not folio.locked, "folio_unlock of an unlocked page", pfn=folio.pfn)
        folio.locked = False
        self.sched.log(folio, "locked", True, False)
        self.sched.wake_all(folio)
