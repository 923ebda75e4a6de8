"""State oracles, checked after every step that changed something.

Oracle 1, writable => exclusive (the PageAnonExclusive rule, 6c287605fd56:
"If a writable, present page table entry points at an anonymous (sub)page,
that (sub)page must be PG_anon_exclusive"):
* a writable PTE of a private mapping maps an anon page that is
  PageAnonExclusive, mapped once, and referenced by no other process's pin
  or pipe -- checked for every PTE table whose ptl is free (the kernel only
  promises the rule outside its critical sections);
* a writable TLB entry agrees with its PTE (same page, PTE writable) unless
  a flush of that mm is pending (tlb_flush_pending, mmap_lock held for
  write, reclaim's deferred batch);
* a FOLL_WRITE reference (R/W pin, /proc/pid/mem) targets such a page.

Oracle 4, accounting: a page's refcount covers its mapcount, pins
(GUP_PIN_COUNTING_BIAS each), pipe references and the swap cache; at
quiescent points (no ptl held) mapcount and swap counts equal the mappings
found in the page tables; nothing maps or caches a freed page or table;
after every process exited everything is freed.
"""

from __future__ import annotations

from model.oracles.errors import Accounting, UseAfterFree, WritableShared
from model.page import ANON, FILE, GUP_PIN_COUNTING_BIAS, ZERO, Folio
from model.pgtable import PTRS_PER_PTE

#: the per-step checks, as bits: writable => exclusive, TLB entries, refcount bounds,
#: mapcounts vs page tables (at quiescent points)
W, T, R, M = 1, 2, 4, 8
#: a lock's owner field: only a release calls for the checks (taking a lock hides state)
_RELEASE = 16

#: which checks a change of each field (model/changes.py) calls for
FIELD_CHECKS = {
    "pte": W | T | M, "pmd": W | T | M, "tlb": T, "_refcount": R, "mapcount": W | R | M,
    "PageAnonExclusive": W, "freed": R | M, "swapcache": R | M, "count": M,
    "pin": W | R, "pin.associated": W | R, "pipe": W | R, "tlb_flush_pending": T,
    "tlb_flush_batched": T, "writer": T, "owner": W | _RELEASE, "refcount": M,
}

#: the folio fields whose change calls for its refcount bound check
_REFCOUNT_FIELDS = frozenset({"_refcount", "mapcount", "swapcache", "freed"})


class Invariants:
    """The per-step and final state checks."""

    #: designs that share PTE tables but count one mapcount per sharer (v4, relaxed)
    #: keep this True; RFC v2's lazy accounting sets it False
    mapcount_counts_sharers = True
    #: a change since the last quiescent point may have broken mapcount == mappings
    mappings_dirty = False
    #: a change not yet checked for writable => exclusive
    writable_dirty = False

    # -- hooks from the operations ---------------------------------------------
    def check_foll_write_target(self, mm, vma, addr: int, folio, what: str) -> None:
        """A kernel write through a GUP reference may only hit an exclusive page."""
        if vma is None or vma.is_shared():
            return
        if folio.kind != ANON or not folio.anon_exclusive or folio.mapcount > 1:
            kind = {ZERO: "the shared zero page", FILE: "a page-cache page"}.get(folio.kind)
            why = kind or (f"an anon page that is not exclusive (PageAnonExclusive="
                           f"{int(folio.anon_exclusive)}, mapcount={folio.mapcount})")
            raise WritableShared(f"{what} in private mapping at va {addr} of {mm.name} "
                                 f"targets {why} ({folio.name})",
                                 mm=mm.mid, va=addr, pfn=folio.pfn)

    # -- per-step checks ---------------------------------------------------------
    def after_step(self, step) -> None:
        spec = self.spec
        if spec.fork_windows:
            spec.sample_fork_windows()
        changes = step.changes
        if not changes:
            return
        checks = 0
        want_of = FIELD_CHECKS.get
        for change in changes:          # (obj, field, index, old, new); indexing is cheaper
            want = want_of(change[1])
            if want:
                if want & _RELEASE and change[4] is not None:
                    continue
                checks |= want
        if not checks:
            return
        if checks & W:
            self.writable_dirty = True
        busy = None                     # in_table_operation(), asked once
        if self.writable_dirty:
            busy = self.in_table_operation()
            if not busy:
                self.writable_dirty = False
                self.check_writable_exclusive()
        if checks & (T | W):
            self.check_tlbs()
        if checks & R:
            self.check_refcounts(step)
        if checks & M:
            self.mappings_dirty = True
        if self.mappings_dirty:
            if busy is None:
                busy = self.in_table_operation()
            if not busy and not self.any_ptl_held():
                self.mappings_dirty = False
                self.check_mappings()

    def in_table_operation(self) -> bool:
        """A design's multi-step page-table operation is half done (COW PTE: fork installs
        the child's pmd before accounting, a break clears the pmd before copying): the
        writable and count checks wait for it to end. Upstream has none."""
        return False

    def any_ptl_held(self) -> bool:
        for table in self.tables:
            if table.ptl.owner is not None:
                return True
        return False

    def _any_references(self) -> bool:
        """Does any process hold a pin or a pipe buffer?"""
        for proc in self.processes:
            if proc.pins or proc.pipe:
                return True
        return False

    def _references(self) -> dict:
        """id(folio) -> [(mm, "pin #N of P1" / "a pipe buffer of P1")] for every pin and
        pipe buffer, in process order, each process's pins before its pipe."""
        refs: dict[int, list] = {}
        for proc in self.processes:
            for pin in proc.pins.values():
                refs.setdefault(id(pin.folio), []).append(
                    (proc.mm, f"pin #{pin.slot} of {proc.name}"))
            for buf in proc.pipe:
                refs.setdefault(id(buf.folio), []).append(
                    (proc.mm, f"a pipe buffer of {proc.name}"))
        return refs

    def _foreign_refs(self, folio, mm):
        """The first pin or pipe reference to ``folio`` taken through an mm other than
        ``mm``. The references are gathered once per check (``_references``)."""
        refs = self._refs
        if refs is None:
            refs = self._refs = self._references()
        for ref_mm, what in refs.get(id(folio), ()):
            if ref_mm is not mm:
                return what
        return None

    #: the references of the writable check in progress (``_foreign_refs``)
    _refs = None

    def check_writable_exclusive(self) -> None:
        self._refs = None
        # With no pin or pipe buffer anywhere, a writable PTE of an exclusive anon page
        # mapped once passes check_writable_pte whatever its VMA: skip the call
        cls = type(self)
        quick = (cls.check_writable_pte is Invariants.check_writable_pte
                 and cls._foreign_refs is Invariants._foreign_refs
                 and not self._any_references())
        for mm in self.mms:
            if mm.dead:
                continue
            base = 0
            for pmd in mm.pmd:
                if pmd is not None and pmd.table.ptl.owner is None:
                    va = base
                    for pte in pmd.table.ptes:
                        if pte is not None and pte.write and pte.present:
                            folio = pte.folio
                            if not (quick and folio.kind == ANON and folio.anon_exclusive
                                    and folio.mapcount <= 1):
                                self.check_writable_pte(mm, va, pmd, pte)
                        va += 1
                base += PTRS_PER_PTE
        self._refs = None

    def check_writable_pte(self, mm, va: int, pmd, pte) -> None:
        vma = mm.find_vma(va)
        if vma is None or vma.is_shared():
            return
        folio = pte.folio
        why = None
        if folio.kind != ANON:
            why = "the shared zero page" if folio.kind == ZERO else "a page-cache page"
        elif not folio.anon_exclusive:
            why = "an anon page without PageAnonExclusive"
        elif folio.mapcount > 1:
            why = f"an anon page mapped {folio.mapcount} times"
        else:
            why = self._foreign_refs(folio, mm)
            if why:
                why = f"an anon page also referenced by {why}"
        if why:
            raise WritableShared(f"writable PTE of {mm.name} at va {va} maps {why} ({folio.name})",
                                 mm=mm.mid, va=va, pfn=folio.pfn, table=pmd.table.name)

    def flush_pending(self, mm) -> bool:
        return (mm.tlb_flush_pending > 0 or mm.mmap_lock.writer is not None
                or any(mm in batch.mms for batch in self.tlb_ubc.values()))

    def check_tlbs(self) -> None:
        for mm in self.mms:
            if not mm.threads:
                continue
            pending = None
            for thread in mm.threads:
                if not thread.tlb:
                    continue
                for va, entry in thread.tlb.items():
                    folio = entry.folio
                    if folio.freed:
                        raise UseAfterFree(f"TLB of {thread.name} still maps freed page "
                                           f"{folio.name} at va {va}",
                                           mm=mm.mid, va=va, pfn=folio.pfn)
                    if not entry.write:
                        continue
                    if pending is None:
                        pending = self.flush_pending(mm)
                    if pending:
                        continue
                    pmd = mm.pmd[va // PTRS_PER_PTE]
                    pte = pmd.table.ptes[va % PTRS_PER_PTE] if pmd is not None else None
                    if pte is None or not pte.present or pte.folio is not folio \
                            or not (pte.write and pmd.write):
                        raise WritableShared(
                            f"writable TLB entry of {thread.name} at va {va} maps {folio.name} "
                            f"but the page table has {pte!r}{'' if pmd is None or pmd.write else ' (PMD read-only)'} "
                            "and no TLB flush is pending",
                            mm=mm.mid, va=va, pfn=folio.pfn)

    def _pins_and_refs(self, folio):
        pins = refs = 0
        if not self._any_references():
            return 0, 0
        for proc in self.processes:
            for pin in proc.pins.values():
                if pin.folio is folio:
                    pins += 1
            for buf in proc.pipe:
                if buf.folio is folio:
                    refs += 1
        return pins, refs

    def check_refcounts(self, step) -> None:
        seen = set()
        for change in step.changes:
            folio = change[0]
            if change[1] not in _REFCOUNT_FIELDS or type(folio) is not Folio or id(folio) in seen:
                continue
            seen.add(id(folio))
            if folio.kind == ZERO:
                continue
            pins, refs = self._pins_and_refs(folio)
            if folio.freed:
                if pins or refs:
                    raise Accounting(f"{folio.name} was freed while still pinned or referenced "
                                     f"({pins} pins, {refs} pipe references)", pfn=folio.pfn)
                continue
            need = folio.mapcount + GUP_PIN_COUNTING_BIAS * pins + refs + int(folio.swapcache)
            if folio._refcount < need:
                raise Accounting(f"refcount of {folio.name} is {folio._refcount}, below what maps "
                                 f"and references it: mapcount {folio.mapcount} + {pins} pins + "
                                 f"{refs} pipe refs + swapcache {int(folio.swapcache)}",
                                 pfn=folio.pfn)

    def count_mappings(self):
        """(PTE mappings per folio, swap PTEs per slot), walking every live page table.
        A table shared by several mms counts once per mm when mapcount counts sharers."""
        maps = {}
        swaps = {}
        seen_tables = set()
        for mm in self.mms:
            if mm.dead:
                continue
            for pmd in mm.pmd:
                if pmd is None:
                    continue
                table = pmd.table
                if table.freed:
                    raise UseAfterFree(f"pmd of {mm.name} points at freed table {table.name}",
                                       mm=mm.mid, table=table.name)
                if not self.mapcount_counts_sharers:
                    if table.tid in seen_tables:
                        continue
                    seen_tables.add(table.tid)
                for pte in table.ptes:
                    if pte is None:
                        continue
                    if pte.present:
                        if not pte.special:
                            pfn = pte.folio.pfn
                            maps[pfn] = maps.get(pfn, 0) + 1
                    else:
                        swaps[pte.swp] = swaps.get(pte.swp, 0) + 1
        return maps, swaps

    def check_tables(self) -> None:
        """Designs that share PTE tables check their table invariants here (quiescent)."""

    def check_mappings(self) -> None:
        self.check_tables()
        maps, swaps = self.count_mappings()
        mapped = maps.get
        for folio in self.folios:
            n = mapped(folio.pfn, 0)
            if not n and not folio.mapcount:
                continue                # the common case, whatever freed says
            if folio.freed:
                if n:
                    raise UseAfterFree(f"freed page {folio.name} is still mapped by {n} PTEs",
                                       pfn=folio.pfn)
                continue
            if folio.mapcount != n:
                raise Accounting(f"mapcount of {folio.name} is {folio.mapcount} but {n} PTEs "
                                 "map it", pfn=folio.pfn)
        for entry, slot in self.swap_slots.items():
            n = swaps.get(entry, 0)
            if slot.count != n:
                raise Accounting(f"swap count of {slot.name} is {slot.count} but {n} swap PTEs "
                                 "reference it", swp=entry)
        for entry, n in swaps.items():
            if entry not in self.swap_slots:
                raise UseAfterFree(f"{n} swap PTEs reference freed swap slot swp{entry}",
                                   swp=entry)

    # -- the end ---------------------------------------------------------------------
    def check_all_freed(self) -> None:
        """After every process exited and every pin and pipe was released."""
        self.check_mappings()
        for folio in self.folios:
            if folio.freed:
                continue
            if folio.kind == FILE and folio.mapping is not None and folio._refcount == 1 \
                    and not folio.mapcount:
                continue            # the page cache's own reference
            if folio.swapcache and folio._refcount == 1 and not folio.mapcount:
                slot = self.swap_slots.get(folio.swap)
                if slot is not None and slot.count == 0:
                    continue        # a clean swap cache page: reclaim frees it lazily
            raise Accounting(f"{folio.name} leaked: refcount {folio._refcount}, mapcount "
                             f"{folio.mapcount} after every process exited", pfn=folio.pfn)
        for table in self.tables:
            if not table.freed and all(t is not table for t, _ in self.rcu_deferred_tables):
                raise Accounting(f"page table {table.name} leaked after every process exited",
                                 table=table.name)
        for entry, slot in self.swap_slots.items():
            if slot.count:
                raise Accounting(f"swap slot {slot.name} leaked with count {slot.count}",
                                 swp=entry)
