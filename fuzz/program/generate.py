"""Random programs: the op-sequence half of the random strategy.

Generation is weighted (syzkaller-style: the weights are data, OP_WEIGHTS)
and biased towards programs that can interleave interestingly: addresses
mostly fall inside mapped ranges, pins use live slots, and a fork's child
gets threads of its own. Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random

from fuzz.program.program import (ARG_DOMAINS, FILE_PAGES, MAX_PROCS, OPS, POPULATE,
                          Mapping, Op, Program, ThreadSpec)
from model.pgtable import USER_PAGES

#: relative frequency of each operation in generated programs
OP_WEIGHTS: dict[str, int] = {
    "read": 10, "write": 14, "fork": 6, "pin": 8, "unpin": 3, "devread": 5, "devwrite": 4,
    "vmsplice": 3, "piperead": 3, "mprotect": 4, "dontneed": 3, "munmap": 2, "mmap": 2,
    "pageout": 3, "reclaim": 3, "clear_refs": 2, "procmem": 3, "exit": 1,
    "signal": 0, "wait": 0, "waitpid": 0,
}


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
    def __init__(self, rng, mappings, max_ops, used=()):
        self.rng = rng
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

    def arg(self, name: str):
        rng = self.rng
        if name == "va":
            return self.va()
        if name == "npages":
            return rng.choice((1, 1, 1, 2, 4))
        domain = ARG_DOMAINS[name]
        return rng.choice(list(domain))

    def op(self, pid: int):
        rng = self.rng
        names = [n for n, w in OP_WEIGHTS.items() if w]
        name = rng.choices(names, weights=[OP_WEIGHTS[n] for n in names])[0]
        if name == "fork":
            if self.next_child >= MAX_PROCS:
                name = "write"
            else:
                child = self.next_child
                self.next_child += 1
                return Op("fork", (child,))
        args = []
        for a in OPS[name]:
            if a == "pid":
                args.append(rng.randrange(self.next_child))
            elif a == "slot":
                args.append(rng.randrange(2))
            else:
                args.append(self.arg(a))
        return Op(name, tuple(args))

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
    return Program(mappings, tuple(threads), schedule)


def random_schedule(rng: random.Random, length: int, preempt: float = 0.3) -> tuple[int, ...]:
    out = []
    for _ in range(rng.randint(0, length)):
        out.append(rng.randint(1, 3) if rng.random() < preempt else 0)
    return tuple(out)
