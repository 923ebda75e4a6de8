"""Random programs: the op-sequence half of the random strategy.

Generation is weighted (syzkaller-style: the weights are data, in the
operation table, fuzz/program/ops.py) and biased towards programs that can
interleave interestingly: addresses mostly fall inside mapped ranges, pins
use live slots, and a fork's child gets threads of its own. Deterministic
for a given ``random.Random``.
"""

from __future__ import annotations

import random

from fuzz.program.ops import OPERATIONS, Arg
from fuzz.program.program import FILE_PAGES, MAX_PROCS, POPULATE, Mapping, Op, Program, ThreadSpec
from model.pgtable import PTRS_PER_PTE, USER_PAGES
from model.swap import DISK, ZRAM

#: generated in place of an operation that creates a process when every process id is taken
NO_CHILD_LEFT = "write"


def random_mappings(rng: random.Random) -> tuple[Mapping, ...]:
    out = []
    taken = set()
    for _ in range(rng.randint(1, 3)):
        npages = rng.choice((1, 1, 2, 2, 3, 4))
        va = rng.randrange(0, USER_PAGES - npages + 1)
        if any(v in taken for v in range(va, va + npages)):
            continue
        kind = rng.choice(("anon", "anon", "anon", "file", "shared"))
        if kind != "anon" and npages > FILE_PAGES:
            npages = FILE_PAGES
        prot = "rw" if rng.random() < 0.8 else "r"
        populate = rng.choice(POPULATE) if kind == "anon" else rng.choice(("none", "read", "write"))
        if prot == "r" and populate in ("write", "swap"):
            populate = "read"
        pgoff = rng.randrange(0, FILE_PAGES - npages + 1) if kind != "anon" else 0
        out.append(Mapping(va, npages, kind, prot, pgoff, populate))
        taken.update(range(va, va + npages))
    return tuple(sorted(out, key=lambda m: m.va))


class _Gen:
    def __init__(self, rng, mappings, max_ops, used=(), slots=2, whole=0.0):
        self.rng = rng
        self.slots = slots
        #: how often a range takes in a whole mapping (``npages`` the mapping's size)
        self.whole = whole
        self.sizes = sorted({m.npages for m in mappings})
        self.vas = sorted({va for m in mappings for va in range(m.va, m.va + m.npages)}) or [0]
        self.max_ops = max_ops
        self.next_child = 1
        #: addresses the program's operations already use: a new operation mostly picks
        #: one of them (syzkaller reuses resources), so that it meets the others
        self.used = sorted(set(used))

    def va(self) -> int:
        r = self.rng.random()
        if self.used and r < 0.5:
            return self.rng.choice(self.used)
        if r < 0.9:
            return self.rng.choice(self.vas)
        return self.rng.randrange(USER_PAGES)

    def arg(self, arg: Arg):
        """A value for ``arg``: addresses mostly mapped, pids of processes that exist,
        the first pin slots, a new process id for a child."""
        rng = self.rng
        name = arg.name
        if name == "va":
            return self.va()
        if name == "npages":
            if self.whole and rng.random() < self.whole:
                return rng.choice(self.sizes)
            return rng.choice((1, 1, 1, 2, 4))
        if name == "pid":
            return rng.randrange(self.next_child)
        if name == "slot":
            return rng.randrange(self.slots)
        if name == "child":
            self.next_child += 1
            return self.next_child - 1
        return rng.choice(list(arg.domain))

    def op(self, pid: int):
        weighted = [o for o in OPERATIONS.values() if o.weight]
        operation = self.rng.choices(weighted, weights=[o.weight for o in weighted])[0]
        if self.next_child >= MAX_PROCS and "child" in operation.arg_names:
            operation = OPERATIONS[NO_CHILD_LEFT]
        return Op(operation.name, tuple(self.arg(a) for a in operation.args))

    def ops(self, pid: int, n: int):
        return tuple(self.op(pid) for _ in range(n))


def random_program(rng: random.Random, *, max_threads: int = 3, max_ops: int = 8,
                   schedule_len: int = 40, preempt: float = 0.3) -> Program:
    mappings = random_mappings(rng)
    g = _Gen(rng, mappings, max_ops)
    threads = []
    nthreads = rng.randint(1, max_threads)
    for _ in range(nthreads):
        threads.append(ThreadSpec(0, g.ops(0, rng.randint(1, max_ops))))
    for child in range(1, g.next_child):
        for _ in range(rng.choice((1, 1, 2))):
            threads.append(ThreadSpec(child, g.ops(child, rng.randint(0, max_ops // 2 + 1))))
    schedule = random_schedule(rng, schedule_len, preempt)
    swap = ZRAM if rng.random() < 0.25 else DISK
    return Program(mappings, tuple(threads), schedule, swap=swap)


def random_schedule(rng: random.Random, length: int, preempt: float = 0.3) -> tuple[int, ...]:
    out = []
    for _ in range(rng.randint(0, length)):
        out.append(rng.randint(1, 3) if rng.random() < preempt else 0)
    return tuple(out)


#: the operations a pair program races: every generated one, drawn with equal chance, so
#: that a rare operation meets every other as often as a common one does
RACED = tuple(o for o in OPERATIONS.values() if o.weight)
#: the states of the COW lifecycle a pair program's page starts the race in: (name,
#: weight, mapping kind, how setup populates it, what the first thread does before the
#: race). A race on an empty page has nothing to lose. A page its only process wrote
#: is the common case, and the only state in which the first thread holds a writable
#: translation when the race begins (stale translations are where lost stores come from).
PAIR_STATES = (
    ("exclusive", 3, "anon", ("write",), ()),       # written: PageAnonExclusive, mapped once
    ("swapped", 1, "anon", ("swap",), ()),          # written, then a swap entry
    ("shared", 1, "anon", ("write",), ("fork",)),   # COW-shared with a live child
    ("unshared", 1, "anon", ("write",), ("fork", "waitpid")),  # the child exited: mapped
                                                    # once, not exclusive (the reuse path)
    ("file", 1, "file", ("none", "read"), ()),      # a private file page COW will copy
    ("pinned", 1, "anon", ("write",), ("pin",)),    # written, then pinned (FOLL_PIN): COW
                                                    # must keep the pin coherent
)
#: the pin slot a pinned state's setup pin takes: the raced operations use slot 0
SETUP_PIN_SLOT = 1
_STATE_WEIGHTS = tuple(state[1] for state in PAIR_STATES)
#: share of pair programs whose second thread loads the page before its operation:
#: a flush that misses a CPU matters only if that CPU holds a translation, and the
#: first thread's is not the only one a multi-threaded process has
TRANSLATED = 0.5
#: the user-space event the first thread sets when its page is in its state, and the
#: second thread waits for before its operation
PAIR_EVENT = 0


def _useful(pair) -> bool:
    """Whether an operation that needs another one's product (a pin, a pipe page) comes
    with it: alone it does nothing."""
    names = {o.name for o in pair}
    return all(o.needs in names for o in pair if o.needs)


#: every pair of operations a pair program may race, in a fixed order
RACED_PAIRS = tuple((a, b) for a in RACED for b in RACED if _useful((a, b)))


def _raced_pair(rng: random.Random):
    """Two operations to race, uniformly among the useful pairs."""
    while True:
        pair = rng.choice(RACED), rng.choice(RACED)
        if _useful(pair):
            return pair


def raced_ops(program: Program) -> tuple[int, int]:
    """The places of a pair program's two raced operations in its first two threads'
    ops: after the setup (which ends in the signal), and after the wait and the load
    that gives the second thread a translation (a raced load never has one)."""
    first, second = program.threads[0].ops, program.threads[1].ops
    i = next((k + 1 for k, op in enumerate(first) if op.name == "signal"), 0)
    j = 1 if second and second[0].name == "wait" else 0
    if j + 1 < len(second) and second[j].name == "read" and second[j + 1].name != "read":
        j += 1
    return i, j


def pair_program(rng: random.Random, *, observe: float = 0.3, pair=None) -> Program:
    """Two threads of one process, one operation each on a private page in one state of
    the COW lifecycle (``PAIR_STATES``), the first thread then loading the page (the
    second one, less often): the small scope most concurrency bugs need (two threads,
    one object: Lu et al., ASPLOS 2008), as Snowboard and syzkaller's collide race a
    pair of calls. The load is what sees a wrong effect: a stale translation, a lost
    store or a page the other operation freed shows only to an access after the call
    returned. The first thread is the one setup populated the page from, so it may hold
    a translation of it; when the state takes a fork or a pin, it makes it and signals
    the second thread once the page is there. A quarter of them map the page's whole
    page table, and their range operations take in the whole mapping half the time:
    emptying a table frees it (munmap's free_pgtables, MADV_DONTNEED's table reclaim)
    under whatever walks it without locks. An execution of such a program is a few times
    cheaper than a ``random_program``'s. ``pair``: the two operations (``RACED_PAIRS``),
    else drawn uniformly."""
    _, _, kind, populate, before = rng.choices(PAIR_STATES, weights=_STATE_WEIGHTS)[0]
    npages = rng.choice((1, 1, 2, PTRS_PER_PTE))
    if npages == PTRS_PER_PTE:                   # a whole page table: a range operation
        va = rng.randrange(0, USER_PAGES, PTRS_PER_PTE)    # that empties it frees the table
    else:
        va = rng.randrange(0, USER_PAGES - npages + 1)
    if kind == "anon":
        mapping = Mapping(va, npages, kind, "rw", 0, rng.choice(populate))
    else:
        prot = rng.choice(("r", "rw"))
        pgoff = rng.randrange(0, FILE_PAGES - npages + 1)
        mapping = Mapping(va, npages, kind, prot, pgoff, rng.choice(populate))
    g = _Gen(rng, (mapping,), 2, used=(mapping.va,), slots=1, whole=0.5)
    setup = []
    if "pin" in before:                          # a pin made before the race
        setup = [Op("pin", (SETUP_PIN_SLOT, mapping.va, rng.choice(("ro", "rw")),
                            rng.choice(("slow", "fast")), rng.choice(("longterm", "short"))))]
    if "fork" in before:                         # fork (and wait for the child's exit)
        setup.append(Op("fork", (g.next_child,)))
        if "waitpid" in before:
            setup.append(Op("waitpid", (g.next_child,)))
        g.next_child += 1
    if before:
        setup.append(Op("signal", (PAIR_EVENT,)))
    threads = []
    leads = ((1.0, setup), (observe, [Op("wait", (PAIR_EVENT,))] if setup else []))
    for k, ((observe_chance, lead), operation) in enumerate(zip(leads, pair or _raced_pair(rng))):
        if k == 1 and operation.name != "read" and rng.random() < TRANSLATED:
            lead = lead + [Op("read", (mapping.va,))]      # a translation on its CPU too
        ops = lead + [Op(operation.name, tuple(g.arg(a) for a in operation.args))]
        if rng.random() < observe_chance:
            ops.append(Op("read", (g.va(),)))
        threads.append(ThreadSpec(0, tuple(ops)))
    if before == ("fork",):                      # the child keeps the page mapped into the race
        threads.append(ThreadSpec(1, (Op("wait", (PAIR_EVENT,)), Op("read", (mapping.va,)))))
    elif "fork" in before:
        threads.append(ThreadSpec(1, ()))
    # a raced fork's child touches the page once
    for child in range(2 if "fork" in before else 1, g.next_child):
        threads.append(ThreadSpec(child, (Op("read", (mapping.va,)),)))
    swap = ZRAM if rng.random() < 0.25 else DISK
    return Program((mapping,), tuple(threads), (), swap=swap)
