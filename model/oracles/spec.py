"""The memory semantics a process is promised, and the oracles that check them.

Every store writes a fresh *value token*; the spec remembers who wrote it,
through which view, and when. The kernel model never reads this ghost
state; the spec only watches values go by and raises a Violation when one
breaks a promise:

* isolation (oracle 3): a value written through a private mapping of pid W
  at va is visible only at the same va of W and of W's descendants forked
  after the write (cow.c "No leak from parent into child" / "from child
  into parent"); never through a MAP_SHARED mapping ("Other mapping not
  modified"). Values of the file and of MAP_SHARED writes are visible to
  everyone.
* no lost writes (oracle 3): a completed store is what later loads of the
  same mm at that va return, until something legitimate replaces it.
* fork snapshot (oracle 3): right after fork, the child sees at each va a
  value the parent had there at some instant within the fork. (Per address:
  the kernel gives no cross-page instant when another thread writes through
  a pinned page that fork copied early -- copy_present_page.)
* pin coherence (oracle 2): while a coherent pin is held and its process
  has not itself unmapped the address, the process's loads and stores and
  the device's accesses through the pin see the same page contents.
"""

from __future__ import annotations

from model.flags import VM_WIPEONFORK
from model.oracles.errors import ForkSnapshot, IsolationBreach, LostWrite, PinIncoherent
from model.pgtable import PTRS_PER_PTE

ZERO_TOKEN = 0


class Token:
    """Provenance of one value: writer pid and va for private writes, else shared."""

    __slots__ = ("writer", "va", "step", "how", "moved")

    def __init__(self, writer, va, step, how, moved=frozenset()):
        self.writer = writer   # pid, or None for file contents and MAP_SHARED writes
        self.va = va
        self.step = step
        self.how = how         # "store", "device", "proc_mem", "file"
        self.moved = moved     # where mremap had moved the page written at va, by then


class Spec:
    """Ghost state and the value-based oracles."""

    def __init__(self, kernel):
        self.k = kernel
        self.tokens: list[Token] = [Token(None, None, -1, "zero")]
        self.expected: dict[tuple[int, int], int | None] = {}
        self.writes: dict[tuple[int, int], int] = {}     # stores per (pid, va), to spot races
        self.unmaps: dict[tuple[int, int], int] = {}     # munmap/DONTNEED begins+ends per (pid, va)
        #: (pid, va) -> mremaps into va that began or ended: a page may arrive there
        self.arrivals: dict[tuple[int, int], int] = {}
        self.unmapping: dict[tuple[int, int], int] = {}  # munmap/DONTNEED in flight per (pid, va)
        # parent pid -> the fork in flight (its task) -> va -> values the parent had there
        self.fork_windows: dict[int, dict[object, dict[int, set[int]]]] = {}
        # mremap moves: [pid, step it ended (None while in flight), old va, new va, pages]
        self.moves: list[list] = []

    # -- values ---------------------------------------------------------
    def now(self) -> int:
        return len(self.k.sched.steps)

    def new_token(self, writer_pid, va, how, moved=frozenset()) -> int:
        self.tokens.append(Token(writer_pid, va, self.now(), how, moved))
        return len(self.tokens) - 1

    def moved_page_vas(self, proc, va: int, folio) -> frozenset:
        """Where ``proc``'s mremaps took the page ``folio`` it held at ``va``: the addresses
        reachable from ``va`` by its moves at which its page table maps ``folio`` now (a
        device writes through a pin into the page, wherever mremap put it)."""
        if not self.moves:
            return frozenset()
        return frozenset(self._moved_from(proc.pid, va) & self._vas_mapping(proc, folio)) - {va}

    def describe(self, token: int) -> str:
        t = self.tokens[token]
        if token == ZERO_TOKEN:
            return "v0(zero)"
        if t.writer is None:
            return f"v{token}({t.how})"
        return f"v{token}(P{t.writer}@{t.va} {t.how} step {t.step})"

    def allowed(self, token: int, reader, va: int, shared_view: bool) -> bool:
        """May process ``reader`` see ``token`` at ``va`` through this kind of mapping?"""
        t = self.tokens[token]
        if t.writer is None:
            return True
        if shared_view:
            return False
        line = self._lineage(reader, t)
        if line is None:
            return False
        if t.va == va or va in t.moved:
            return True
        return bool(self.moves) and va in self._moved_vas(t, line)

    def allowed_through_reference(self, token: int, holder, va: int, shared_view: bool) -> bool:
        """``allowed`` for a pipe buffer or a pin that ``holder`` took at ``va``: the page it
        holds is where ``holder``'s mremap moved it since, so ``holder``'s own stores at the
        new address land in it too (mm/mremap.c:move_ptes moves the entry, not the page)."""
        if self.allowed(token, holder, va, shared_view):
            return True
        return bool(self.moves) and any(self.allowed(token, holder, moved, shared_view)
                                        for moved in sorted(self._moved_from(holder.pid, va))
                                        if moved != va)

    def _moved_from(self, pid: int, va: int) -> set[int]:
        """Every address the page at ``va`` of process ``pid`` was moved to by its mremaps
        (in the order they began; one in flight counts)."""
        vas = {va}
        for mover, _ended, old, new, n in self.moves:
            if mover == pid:
                vas |= {new + v - old for v in vas if old <= v < old + n}
        return vas

    def _lineage(self, reader, t):
        """The processes from the token's writer down to ``reader`` (the memory it was
        written to reached the reader through these forks), or None."""
        line = [reader]
        p = reader
        while p.pid != t.writer:
            child, p = p, p.parent
            if p is None:
                return None
            if child.fork_done_at is not None and t.step >= child.fork_done_at:
                return None                 # written after that fork completed
            line.append(p)
        line.reverse()
        return line

    def _moved_vas(self, t, line) -> set[int]:
        """Where mremap took the page ``t`` was written to: each process of the lineage
        moves it while it holds that memory (from the write, or from its fork, until the
        next fork down the line completes)."""
        vas = {t.va}
        since = t.step
        for i, proc in enumerate(line):
            until = line[i + 1].fork_done_at if i + 1 < len(line) else None
            for pid, ended, old, new, n in self.moves:
                # a move still in flight has moved every value written so far
                step = self.now() if ended is None else ended
                if pid == proc.pid and step > since and (until is None or step <= until):
                    vas |= {new + v - old for v in vas if old <= v < old + n}
            if until is not None:
                since = until
        return vas

    # -- ghost read of what a process would see ---------------------------
    def peek(self, mm, va: int):
        """The value a load of ``mm`` at ``va`` would return now (no side effects), or
        None when unknown: no VMA, or the PTE is in flux under its ptl (a fault would
        wait for the lock and see the settled entry)."""
        for vma in mm.vmas:                          # find_vma
            if vma.vm_start <= va < vma.vm_end:
                break
        else:
            return None
        pmd = mm.pmd[va // PTRS_PER_PTE]             # pmd_index, pte_index: a hot path
        if pmd is not None and pmd.table.ptl.owner is not None:
            return None
        pte = pmd.table.ptes[va % PTRS_PER_PTE] if pmd is not None else None
        if pte is None:
            if vma.vm_file is not None:
                return vma.vm_file.pages[vma.linear_page_index(va)].data
            return ZERO_TOKEN
        if pte.present:
            return pte.folio.data
        slot = self.k.swap_slots.get(pte.swp)
        if slot is None:
            return None
        folio = slot.folio
        return folio.data if folio is not None and folio.uptodate else slot.data

    # -- events from the model ---------------------------------------------
    def _private(self, vma) -> bool:
        return not vma.is_shared()

    def value_written(self, proc, va: int, token: int, vma) -> None:
        """A store/device write/proc-mem write changed ``proc``'s view at ``va``."""
        key = (proc.pid, va)
        # while the process unmaps va, a store may land in the page being zapped
        settled = self._private(vma) and not self.unmapping.get(key, 0)
        self.expected[key] = token if settled else None
        self.writes[key] = self.writes.get(key, 0) + 1
        for window in self.fork_windows.get(proc.pid, {}).values():
            window.setdefault(va, set()).add(token)

    def value_maybe_written(self, proc, va: int, folio=None) -> None:
        """A write that ``proc`` may or may not see at ``va`` (a device write through a pin
        with no promise, a kernel write racing with an unmap): loads may see either. With
        ``folio``, the page written: wherever it is mapped now (mremap may have moved it),
        the same holds."""
        vas = {va} | (self._vas_mapping(proc, folio) if folio is not None else set())
        for v in vas:
            key = (proc.pid, v)
            self.expected[key] = None
            self.writes[key] = self.writes.get(key, 0) + 1
            for window in self.fork_windows.get(proc.pid, {}).values():
                window.setdefault(v, set())

    def _vas_mapping(self, proc, folio) -> set[int]:
        """The addresses at which ``proc``'s page table maps ``folio`` now."""
        out = set()
        for i, pmd in enumerate(proc.mm.pmd):
            if pmd is None:
                continue
            for j, pte in enumerate(pmd.table.ptes):
                if pte is not None and pte.present and pte.folio is folio:
                    out.add(i * len(pmd.table.ptes) + j)
        return out

    def view_reset(self, proc, va: int, vma) -> None:
        """munmap / a new mapping: the view starts over."""
        key = (proc.pid, va)
        if vma is not None and vma.vm_file is None and self._private(vma):
            self.expected[key] = ZERO_TOKEN
        else:
            self.expected[key] = None

    def unmap_begin(self, proc, vas) -> None:
        """The process starts unmapping (munmap, MADV_DONTNEED): pins there promise
        nothing any more, nor do pins and kernel writes that complete meanwhile."""
        for va in vas:
            key = (proc.pid, va)
            self.unmaps[key] = self.unmaps.get(key, 0) + 1
            self.unmapping[key] = self.unmapping.get(key, 0) + 1
            for pin in proc.pins.values():
                if pin.va == va and pin.associated:
                    pin.associated = False
                    self.k.sched.log_at(proc, "pin.associated", pin.slot, True, False)

    def unmap_end(self, proc, vas) -> None:
        for va in vas:
            key = (proc.pid, va)
            self.unmaps[key] = self.unmaps.get(key, 0) + 1
            self.unmapping[key] -= 1

    def unmap_mark(self, proc, va: int) -> int:
        return self.unmaps.get((proc.pid, va), 0)

    def still_mapped_since(self, proc, va: int, mark: int) -> bool:
        """No munmap/DONTNEED of ``va`` by the process began or ended since ``mark``."""
        key = (proc.pid, va)
        return self.unmaps.get(key, 0) == mark and not self.unmapping.get(key, 0)

    def move_begin(self, proc, old: int, new: int, n: int) -> dict:
        """mremap starts moving [old, old+n) to new: both ranges are in flux (a store through
        the new entries, or through a stale translation of the old ones, may land before
        the move returns), and pins at the old addresses promise nothing any more (mremap
        ends their association)."""
        olds, news = range(old, old + n), range(new, new + n)
        saved = {va: self.expected.get((proc.pid, va)) for va in olds}
        marks = {va: self.writes.get((proc.pid, va), 0) for va in (*olds, *news)}
        self.unmap_begin(proc, olds)
        self.unmap_begin(proc, news)
        self._arrive(proc, news)
        for va in (*olds, *news):
            self.expected[(proc.pid, va)] = None
        move = [proc.pid, None, old, new, n]
        self.moves.append(move)
        return {"saved": saved, "marks": marks, "move": move}

    def move_end(self, proc, old: int, new: int, n: int, marks: dict, moved: bool) -> None:
        """mremap returned: on success the values live at the new addresses (unless the
        process stored at either address meanwhile: then either value may be seen)."""
        self.unmap_end(proc, range(old, old + n))
        self.unmap_end(proc, range(new, new + n))
        self._arrive(proc, range(new, new + n))
        move = marks["move"]
        if not moved:
            self.moves.remove(move)
            return
        move[1] = self.now()
        for i in range(n):
            key_old, key_new = (proc.pid, old + i), (proc.pid, new + i)
            same = all(self.writes.get(k, 0) == marks["marks"][k[1]] for k in (key_old, key_new))
            # an unmap or MADV_DONTNEED of the new range in flight decides it when it ends
            settled = same and not self.unmapping.get(key_new, 0)
            self.expected[key_new] = marks["saved"][old + i] if settled else None

    def _arrive(self, proc, vas) -> None:
        for va in vas:
            key = (proc.pid, va)
            self.arrivals[key] = self.arrivals.get(key, 0) + 1

    def zap_begin(self, proc, vas) -> dict:
        """MADV_DONTNEED starts: until it ends, a load may see the old or the new view."""
        marks = {}
        for va in vas:
            key = (proc.pid, va)
            marks[va] = (self.writes.get(key, 0), self.arrivals.get(key, 0))
            self.expected[key] = None
        return marks

    def zap_end(self, proc, marks: dict) -> None:
        """MADV_DONTNEED ended: the view restarts, unless the process stored there
        meanwhile, or an mremap into the address began or ended meanwhile (it may have
        moved a page there after the zap): the calls overlapped, so either value may
        be seen."""
        for va, (writes, arrivals) in marks.items():
            key = (proc.pid, va)
            if self.writes.get(key, 0) == writes and self.arrivals.get(key, 0) == arrivals:
                self.view_reset(proc, va, proc.mm.find_vma(va))
            else:
                self.expected[key] = None

    def check_load(self, proc, va: int, token: int, vma, what: str = "load") -> None:
        shared = vma.is_shared()
        if not self.allowed(token, proc, va, shared):
            raise IsolationBreach(
                f"{proc.name} {what} at va {va} returned {self.describe(token)}"
                + (" through a MAP_SHARED mapping" if shared else ""),
                pid=proc.pid, va=va, value=token)
        exp = self.expected.get((proc.pid, va))
        if what == "load" and exp is not None and exp != token:
            raise LostWrite(f"{proc.name} load at va {va} returned {self.describe(token)}, "
                            f"but its last completed store there was {self.describe(exp)}",
                            pid=proc.pid, va=va, value=token, expected=exp)
        self._check_pins_see(proc, va, token, what)

    def check_pipe_read(self, proc, va: int, token: int, shared: bool) -> None:
        """Data vmsplice'd from ``va`` and read later: FOLL_GET promises no coherence,
        but it must never be another process's post-fork write (CVE-2020-29374)."""
        if not self.allowed_through_reference(token, proc, va, shared):
            raise IsolationBreach(
                f"{proc.name} pipe read of the page vmsplice'd from va {va} returned "
                f"{self.describe(token)}", pid=proc.pid, va=va, value=token)

    def check_store(self, proc, va: int, token: int) -> None:
        self._check_pins_see(proc, va, token, "store")

    def _check_pins_see(self, proc, va: int, token: int, what: str) -> None:
        for pin in proc.pins.values():
            if pin.va == va and pin.coherent and pin.associated and pin.folio.data != token:
                raise PinIncoherent(
                    f"{proc.name} {what} at va {va} saw {self.describe(token)} but its "
                    f"pin #{pin.slot} holds {pin.folio.name} with {self.describe(pin.folio.data)}",
                    pid=proc.pid, va=va, pfn=pin.folio.pfn, pin=pin.slot)

    def check_device_read(self, pin, token: int) -> None:
        proc = pin.process
        if not self.allowed_through_reference(token, proc, pin.va, pin.shared):
            raise IsolationBreach(
                f"device read through {proc.name}'s pin #{pin.slot} returned "
                f"{self.describe(token)}", pid=proc.pid, va=pin.va, value=token)
        if not (pin.coherent and pin.associated) or proc.mm.dead:
            return
        seen = self.peek(proc.mm, pin.va)
        if seen is not None and seen != token:
            raise PinIncoherent(
                f"device reads {self.describe(token)} through pin #{pin.slot} "
                f"({pin.folio.name}) but {proc.name} sees {self.describe(seen)} at va {pin.va}",
                pid=proc.pid, va=pin.va, pfn=pin.folio.pfn, pin=pin.slot)

    # -- fork --------------------------------------------------------------
    def fork_begin(self, parent, key) -> None:
        """The fork holding ``key`` locked the parent's mm: its window opens now."""
        mm = parent.mm
        window = {}
        for vma in mm.vmas:
            for va in range(vma.vm_start, vma.vm_end):
                seen = self.peek(mm, va)
                window[va] = {seen} if seen is not None else set()
        self.fork_windows.setdefault(parent.pid, {})[key] = window

    def sample_fork_windows(self) -> None:
        """After each step while a fork is in flight: record what the parent now sees."""
        peek = self.peek
        for pid, windows in self.fork_windows.items():
            if not windows:
                continue
            mm = self.k.process_by_pid(pid).mm
            for window in windows.values():
                for va, values in window.items():
                    seen = peek(mm, va)
                    if seen is not None:
                        values.add(seen)

    def fork_end(self, parent, child, key) -> None:
        """The child's memory must be the parent's at some instant of the fork."""
        windows = self.fork_windows.get(parent.pid, {})
        window = windows.pop(key, {})
        if not windows:
            self.fork_windows.pop(parent.pid, None)
        child.fork_done_at = self.now()
        for vma in child.mm.vmas:
            wiped = bool(vma.vm_flags & VM_WIPEONFORK)
            for va in range(vma.vm_start, vma.vm_end):
                seen = self.peek(child.mm, va)
                if wiped:
                    # MADV_WIPEONFORK: the child's mapping starts out zero-filled
                    if seen is not None and seen != ZERO_TOKEN:
                        raise ForkSnapshot(
                            f"after fork {child.name} sees {self.describe(seen)} at va {va} "
                            "of a VM_WIPEONFORK mapping, which starts out empty",
                            pid=child.pid, va=va)
                    self.expected[(child.pid, va)] = ZERO_TOKEN
                    continue
                allowed = window.get(va, set())
                if seen is not None and allowed and seen not in allowed:
                    had = ", ".join(self.describe(v) for v in sorted(allowed, key=str))
                    raise ForkSnapshot(
                        f"after fork {child.name} sees {self.describe(seen)} at va {va}; "
                        f"{parent.name} had only {{{had}}} there during the fork",
                        pid=child.pid, va=va)
                exp = self.expected.get((parent.pid, va))
                self.expected[(child.pid, va)] = exp if len(allowed) == 1 else None

    def fork_failed(self, parent, key) -> None:
        windows = self.fork_windows.get(parent.pid, {})
        windows.pop(key, None)
        if not windows:
            self.fork_windows.pop(parent.pid, None)
