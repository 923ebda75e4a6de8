"""The engine's chooser: an explicit prefix, then a seeded walk; it records what it saw.

An input of the guided engine is (program, prefix, seed). The prefix is
followed choice by choice; past it a sampler seeded with ``seed`` decides:
a random walk that switches task with probability ``switch`` at each
decision, PCT (``pct_depth``: random task priorities and depth - 1 priority
change points among the first ``k`` decisions), or a selectively uniform
random walk (``urw``: fuzz/runtime/urw.py, which weighs each task by the
state-changing steps it has left). So every
execution of a corpus program samples a fresh interleaving, and the
execution still replays exactly: the scheduler records every effective
choice, and that recorded schedule is what a kept entry carries.

Beside choosing, the probe keeps what schedule mutations aim at:

* ``decisions``: for each decision (in order, aligned with the scheduler's
  recorded choices), the index of the step it started and the tids it chose
  among (None for a fault-injection decision);
* ``conflicts``: pairs of steps (i, j), i < j, of different tasks that wrote
  a common object (field family: a page's refcount, a PTE slot, a lock
  owner, ...) with no write in between -- the interleaving's conflicting
  accesses, at most one pair per (label, label, family) and ``MAX_CONFLICTS``
  in all. Setup's writes count too, though no schedule reorders them: such a
  pair marks a thread's first write to the state the race is about, where a
  preemption matters (docs/benchmarks.md measured leaving them out: slower);
* ``features``: the execution's coverage, three coarse families computed in
  the same pass and without instrumenting ``model/``:

  - point: a scheduling point (label) was reached;
  - calls: a step of one task wrote an object whose last writer was a step of
    another task, by the two tasks' operations (dontneed against reclaim):
    which calls raced, as Snowboard's concurrent call pairs. (KRACE's finer
    alias coverage -- by kernel function pair and field -- doubled the corpus
    without finding more; the engine still aims schedules at these pairs);
  - value: a step at a label changed a field family and left it, or its page,
    in an abstract state -- a page as exclusive or not, mapped more than
    once, pinned, in the swap cache, locked, freed; a PTE as none, swap
    (exclusive or not) or present (writable, and its page's state); a count
    as 0, 1, 2, more or pinned; a flag -- libFuzzer's value profile, for the
    states COW correctness turns on (GUP-fast grabbing a page that fork has
    just made shared is one of these);

  - reads-from: a load (or a device or pipe read) returned the zero page, the
    latest value its process stored at that address, an older one, or one it
    did not store -- with each operation another task was in meanwhile
    (RFF's reads-from pairs, at the level of values: a load that returns an
    older store while a DONTNEED is in flight is one interleaving away from
    one that returns it after);

  Lock bookkeeping (SYNC_FAMILIES) takes no part in either. Features are
  stable ints (crc32 of their description), the same in every process.
"""

from __future__ import annotations

import random
import zlib

from model.mm import TlbEntry
from model.page import ANON, GUP_PIN_COUNTING_BIAS, Folio
from model.pgtable import Pte

MAX_CONFLICTS = 48
#: lock bookkeeping: these fields order critical sections but carry no data, and their
#: label pairs would outnumber every other feature -- left out of the features
SYNC_FAMILIES = frozenset({"owner", "readers", "writer", "mm_lock_seq", "signalled"})

_families: dict[str, str] = {}
_ids: dict[tuple, int] = {}


def field_family(field: str) -> str:
    """"pte[5]" -> "pte", "pin#0" -> "pin": the field without its index."""
    family = _families.get(field)
    if family is None:
        family = _families[field] = field.partition("[")[0].partition("#")[0].partition(".")[0]
    return family


def feature_id(key: tuple) -> int:
    fid = _ids.get(key)
    if fid is None:
        fid = _ids[key] = zlib.crc32(repr(key).encode())
    return fid


def folio_state(folio) -> tuple:
    """A page's COW-relevant state: exclusive, mapped more than once, pinned, in the swap
    cache, locked, freed."""
    return (folio.anon_exclusive, folio.mapcount > 1, folio._refcount >= GUP_PIN_COUNTING_BIAS,
            folio.swapcache, folio.locked, folio.freed)


def abstract(value):
    """The coarse state a value feature records."""
    t = type(value)
    if t is bool or value is None:
        return value
    if t is int:
        return value if value < 3 else (3 if value < GUP_PIN_COUNTING_BIAS else "pinned")
    if t is Pte:
        if not value.present:
            return ("swp", value.swp_exclusive)
        f = value.folio
        if f.kind != ANON:
            return (f.kind, value.write)
        return ("anon", value.write, f.anon_exclusive, f.mapcount > 1,
                f._refcount >= GUP_PIN_COUNTING_BIAS, f.swapcache)
    if t is TlbEntry:
        return ("tlb", value.write)
    if t is dict:
        return bool(value)
    return t.__name__


class Probe:
    """Follows ``prefix``, then a seeded sampler; records decisions, conflicts, features."""

    __slots__ = ("prefix", "rng", "switch", "fail", "steps", "labels", "tids", "ops",
                 "decisions", "conflicts", "features", "_last", "_seen", "_op",
                 "_priority", "_changes", "_stored", "names", "opindex", "racing", "_started",
                 "urw")

    def __init__(self, prefix, seed: int, switch: float = 0.3, fail: float = 0.0,
                 pct_depth: int = 0, k: int = 100):
        self.prefix = prefix
        self.rng = random.Random(seed)
        #: a URWChooser (sharing ``rng``) that decides past the prefix, set by the caller
        self.urw = None
        self.switch = switch
        self.fail = fail
        #: PCT: task priorities, and the decisions at which the running task drops
        #: below every other (None: a random walk)
        self._priority: dict[int, float] | None = {} if pct_depth else None
        self._changes = sorted(len(prefix) + self.rng.randrange(max(k, 2))
                               for _ in range(pct_depth - 1)) if pct_depth else []
        self.steps = 0                      # steps closed so far
        self.labels: list[str] = []         # label of each step
        self.tids: list[int] = []           # task of each step
        self.decisions: list[tuple[int, tuple | None, int]] = []   # (next step, tids, chosen)
        self.conflicts: list[tuple[int, int]] = []
        self.features: set[int] = set()
        self.ops: list[str] = []            # the operation each step belongs to
        self._op: dict[int, str] = {}       # tid -> the operation it is in
        self.opindex: list[int] = []        # per step: which operation of its thread (-1: none)
        self._started: dict[int, int] = {}  # tid -> operations started
        self.names: dict[int, str] = {}     # tid -> task name, as seen at decisions
        #: (tid, operation index) of every operation with a step in a conflict
        self.racing: set[tuple[int, int]] = set()
        self._stored: dict[tuple, list] = {}   # (mm id, va) -> values stored there, in order
        self._last: dict[tuple, int] = {}   # (object id, family) -> step that last wrote it
        self._seen: set = set()

    def choose(self, n, label, runnable):
        d = len(self.decisions)
        if d < len(self.prefix):
            c = self.prefix[d] % n
        elif runnable is None:
            c = 1 if self.fail and self.rng.random() < self.fail else 0
        elif self.urw is not None:
            c = self.urw.choose(n, label, runnable)
        elif self._priority is not None:
            c = self._pct(d, runnable)
        elif self.rng.random() < self.switch:
            c = self.rng.randrange(1, n)
        else:
            c = 0
        if runnable is None:
            self.decisions.append((self.steps, None, c))
        else:
            for t in runnable:
                self.names[t.tid] = t.name
            self.decisions.append((self.steps, tuple(t.tid for t in runnable), c))
        return c

    def _pct(self, d: int, runnable) -> int:
        priority = self._priority
        changes = self._changes
        while changes and d >= changes[0]:
            changes.pop(0)
            # below every other, those dropped before included: with two tasks, A dropped
            # and then B lets A run again (A, B, A: two preemptions)
            priority[runnable[0].tid] = min(priority.values(), default=0.0) - 1.0
        best, best_p = 0, None
        for i, task in enumerate(runnable):
            p = priority.get(task.tid)
            if p is None:
                p = priority[task.tid] = self.rng.random()
            if best_p is None or p > best_p:
                best, best_p = i, p
        return best

    def _reads_from(self, tid: int, ctx, name: str, value: int) -> None:
        where = ctx if len(ctx) == 2 else None
        stored = self._stored.get(where)
        if name in ("write", "devwrite"):
            if stored is None:
                stored = self._stored[where] = []
            stored.append(value)
            return
        if name not in ("read", "devread", "piperead"):
            return
        if value == 0:
            how = "zero"
        elif stored and value == stored[-1]:
            how = "latest"
        elif stored and value in stored:
            how = "older"
        else:
            how = "other"
        for other in {o for t, o in self._op.items() if t != tid and o != "-"} or ("-",):
            self.features.add(feature_id(("reads-from", name, how, other)))

    def observe(self, step) -> None:
        if self.urw is not None:
            self.urw.observe(step)
        i = self.steps
        self.steps = i + 1
        tid = step.tid
        label = step.label
        self.labels.append(label)
        self.tids.append(tid)
        features = self.features
        op = self._op.get(tid, "-")
        for event in step.events:
            if event[0] == "op":
                op = event[1].partition(" ")[0]
                self._started[tid] = self._started.get(tid, 0) + 1
            elif event[0] == "ret":
                op = "-"
                if len(event) == 4:
                    self._reads_from(tid, step.ctx, event[1], event[3])
        self._op[tid] = op
        self.ops.append(op)
        opindex = self._started.get(tid, 0) - 1 if op != "-" else -1
        self.opindex.append(opindex)
        features.add(feature_id(("point", label)))
        if not step.changes:
            return
        last = self._last
        labels, tids = self.labels, self.tids
        for change in step.changes:
            family = field_family(change[1])
            if family in SYNC_FAMILIES:
                continue
            obj = change[0]
            state = folio_state(obj) if type(obj) is Folio else abstract(change[-1])
            features.add(feature_id(("value", label, family, state)))
            key = (id(change[0]), family)
            prev = last.get(key)
            last[key] = i
            if prev is not None and prev != i and tids[prev] != tid:
                self.racing.add((tids[prev], self.opindex[prev]))
                self.racing.add((tid, opindex))
                sig = (labels[prev], label, family)
                if sig not in self._seen:
                    self._seen.add(sig)
                    features.add(feature_id(("calls", self.ops[prev], op)))
                    if len(self.conflicts) < MAX_CONFLICTS:
                        self.conflicts.append((prev, i))
