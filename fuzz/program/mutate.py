"""Structure-aware mutation and crossover of Programs.

Used by the coverage strategy's libFuzzer custom mutator, by the
corpus-driven random strategy and by the guided strategy (operations and
layout only: it chooses schedules itself). Each mutation is a small edit
that keeps the program valid: insert, delete, replace or duplicate an
operation, move one between threads, copy one into another thread to race
with itself (syzkaller's collide), tweak an argument, add or drop a thread
or mapping, switch the swap device, and edit the schedule (change a choice,
insert or delete a preemption, truncate). Crossover splices two programs (thread lists, or one program's
operations with the other's schedule). Weights are data (MUTATION_WEIGHTS).
"""

from __future__ import annotations

import random
from dataclasses import replace

from fuzz.program.bytecodec import MAX_MAPPINGS, MAX_OPS, MAX_THREADS
from fuzz.program.generate import _Gen, random_mappings
from fuzz.program.ops import OPERATIONS, forked_child
from fuzz.program.program import MAX_PROCS, SWAPS, Op, Program, ThreadSpec

MUTATION_WEIGHTS: dict[str, int] = {
    "insert_op": 10, "delete_op": 6, "replace_op": 6, "duplicate_op": 3, "move_op": 3,
    "collide_op": 6,
    "tweak_arg": 10, "add_thread": 2, "drop_thread": 1, "add_fork": 2, "remap": 1,
    "schedule_choice": 12, "schedule_insert": 8, "schedule_delete": 5, "schedule_truncate": 2,
    "schedule_reroll": 3, "swap_device": 1,
}


def _gen(rng, p: Program) -> _Gen:
    used = [op.args[names.index("va")] for t in p.threads for op in t.ops
            if "va" in (names := OPERATIONS[op.name].arg_names)]
    g = _Gen(rng, p.mappings, MAX_OPS, used)
    pids = {t.pid for t in p.threads}
    g.next_child = min(max(pids | {0}) + 1, MAX_PROCS)
    return g


def _set_thread(p: Program, i: int, ops) -> Program:
    threads = list(p.threads)
    threads[i] = ThreadSpec(threads[i].pid, tuple(ops))
    return replace(p, threads=tuple(threads))


def _pick_thread(rng, p):
    return rng.randrange(len(p.threads))


def insert_op(rng, p):
    i = _pick_thread(rng, p)
    ops = list(p.threads[i].ops)
    if len(ops) >= MAX_OPS:
        return p
    ops.insert(rng.randint(0, len(ops)), _gen(rng, p).op(p.threads[i].pid))
    return _set_thread(p, i, ops)


def delete_op(rng, p):
    i = _pick_thread(rng, p)
    ops = list(p.threads[i].ops)
    if not ops:
        return p
    del ops[rng.randrange(len(ops))]
    return _set_thread(p, i, ops)


def replace_op(rng, p):
    i = _pick_thread(rng, p)
    ops = list(p.threads[i].ops)
    if not ops:
        return insert_op(rng, p)
    ops[rng.randrange(len(ops))] = _gen(rng, p).op(p.threads[i].pid)
    return _set_thread(p, i, ops)


def duplicate_op(rng, p):
    i = _pick_thread(rng, p)
    ops = list(p.threads[i].ops)
    if not ops or len(ops) >= MAX_OPS:
        return p
    j = rng.randrange(len(ops))
    ops.insert(j, ops[j])
    return _set_thread(p, i, ops)


def move_op(rng, p):
    if len(p.threads) < 2:
        return p
    i, j = rng.sample(range(len(p.threads)), 2)
    src, dst = list(p.threads[i].ops), list(p.threads[j].ops)
    if not src or len(dst) >= MAX_OPS:
        return p
    dst.insert(rng.randint(0, len(dst)), src.pop(rng.randrange(len(src))))
    return _set_thread(_set_thread(p, i, src), j, dst)


def collide_op(rng, p):
    """Copy an operation into another thread of its process, so that the two run
    concurrently (syzkaller's collide mode races a call with its copy). With one
    thread in the process, the copy gets a new thread."""
    i = _pick_thread(rng, p)
    ops = p.threads[i].ops
    if not ops:
        return p
    op = ops[rng.randrange(len(ops))]
    pid = p.threads[i].pid
    others = [j for j, t in enumerate(p.threads) if j != i and t.pid == pid]
    if not others:
        if len(p.threads) >= MAX_THREADS or op.name == "fork":
            return p
        return replace(p, threads=p.threads + (ThreadSpec(pid, (op,)),))
    j = rng.choice(others)
    dst = list(p.threads[j].ops)
    if len(dst) >= MAX_OPS or op.name == "fork":
        return p
    dst.insert(rng.randint(0, len(dst)), op)
    return _set_thread(p, j, dst)


def tweak_arg(rng, p):
    i = _pick_thread(rng, p)
    ops = list(p.threads[i].ops)
    candidates = [k for k, o in enumerate(ops) if o.args]
    if not candidates:
        return replace_op(rng, p)
    k = rng.choice(candidates)
    o = ops[k]
    operation = OPERATIONS[o.name]
    a = rng.randrange(len(operation.args))
    args = list(o.args)
    domain = operation.args[a].domain
    if isinstance(domain, range) and rng.random() < 0.6:
        args[a] = min(max(args[a] + rng.choice((-1, 1)), domain.start), domain.stop - 1)
    else:
        args[a] = rng.choice(list(domain))
    ops[k] = Op(o.name, tuple(args))
    return _set_thread(p, i, ops)


def add_thread(rng, p):
    if len(p.threads) >= MAX_THREADS:
        return p
    pids = sorted({t.pid for t in p.threads})
    pid = rng.choice(pids)
    g = _gen(rng, p)
    return replace(p, threads=p.threads + (ThreadSpec(pid, g.ops(pid, rng.randint(1, 4))),))


def drop_thread(rng, p):
    if len(p.threads) < 2:
        return p
    threads = list(p.threads)
    del threads[rng.randrange(len(threads))]
    return replace(p, threads=tuple(threads))


def add_fork(rng, p):
    """A fork of a new child process, and a thread for the child."""
    pids = {t.pid for t in p.threads}
    forked = {forked_child(o) for t in p.threads for o in t.ops}
    free = [c for c in range(1, MAX_PROCS) if c not in pids | forked]
    if not free or len(p.threads) >= MAX_THREADS:
        return insert_op(rng, p)
    child = free[0]
    i = rng.randrange(len(p.threads))
    ops = list(p.threads[i].ops)
    if len(ops) >= MAX_OPS:
        return p
    ops.insert(rng.randint(0, len(ops)), Op("fork", (child,)))
    p = _set_thread(p, i, ops)
    g = _gen(rng, p)
    return replace(p, threads=p.threads + (ThreadSpec(child, g.ops(child, rng.randint(1, 3))),))


def remap(rng, p):
    m = random_mappings(rng)
    return replace(p, mappings=m[:MAX_MAPPINGS])


def swap_device(rng, p):
    """The other swap device."""
    return replace(p, swap=SWAPS[1 - SWAPS.index(p.swap)])


def schedule_choice(rng, p):
    s = list(p.schedule)
    if not s:
        return schedule_insert(rng, p)
    k = rng.randrange(len(s))
    s[k] = 0 if s[k] and rng.random() < 0.4 else rng.randint(0, 3)
    return p.with_schedule(s)


def schedule_insert(rng, p):
    s = list(p.schedule)
    at = rng.randint(0, len(s) + 8)
    s.extend([0] * max(0, at - len(s)))
    s.insert(at, rng.randint(1, 3))
    return p.with_schedule(s[:512])


def schedule_delete(rng, p):
    s = list(p.schedule)
    if not s:
        return p
    del s[rng.randrange(len(s))]
    return p.with_schedule(s)


def schedule_truncate(rng, p):
    s = list(p.schedule)
    return p.with_schedule(s[:rng.randint(0, len(s))]) if s else p


def schedule_reroll(rng, p):
    n = rng.randint(4, 60)
    return p.with_schedule([rng.randint(1, 3) if rng.random() < 0.3 else 0 for _ in range(n)])


MUTATIONS = {name: globals()[name] for name in MUTATION_WEIGHTS}
#: the mutations of the operations and layout alone (for engines that choose the
#: schedule themselves)
PROGRAM_MUTATION_WEIGHTS = {n: w for n, w in MUTATION_WEIGHTS.items()
                            if not n.startswith("schedule_")}


def mutate(rng: random.Random, p: Program, rounds: int | None = None,
           weights: dict[str, int] = MUTATION_WEIGHTS) -> Program:
    """Apply 1..4 mutations drawn by ``weights``."""
    names = list(weights)
    weights = [weights[n] for n in names]
    if not p.threads:
        p = replace(p, threads=(ThreadSpec(0, ()),))
    for _ in range(rounds or rng.choice((1, 1, 1, 2, 2, 3, 4))):
        p = MUTATIONS[rng.choices(names, weights)[0]](rng, p)
    return p


def crossover(rng: random.Random, a: Program, b: Program) -> Program:
    """Splice two programs: threads of both, or a's operations with b's schedule."""
    r = rng.random()
    if r < 0.4:
        return a.with_schedule(b.schedule)
    if r < 0.8 and a.threads and b.threads:
        k = rng.randint(1, len(a.threads))
        threads = (a.threads[:k] + b.threads[rng.randrange(len(b.threads)):])[:MAX_THREADS]
        return replace(a, threads=threads)
    cut = rng.randint(0, len(a.schedule))
    return a.with_schedule(a.schedule[:cut] + b.schedule[cut:])
