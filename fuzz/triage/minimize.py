"""The minimizer: deterministic passes, cheapest first, over a predicate.

Like syzkaller's Minimize and Hypothesis's shrinker, ``shrink`` only calls
a predicate -- is this candidate still interesting? -- memoised (both
answers) by the candidate's canonical text, and accepts a candidate only
if it is smaller in ``sort_key`` -- operations first, then threads, then
preemptions -- so it terminates, and a pass that made no progress makes
none when run again. The predicate answers with the canonical interesting
program (for a run: the candidate with the schedule it actually followed,
so the result replays as is), or True (the candidate itself), or None or
False. Passes, in order:

1. drop trailing operations, then remove operations one at a time and in
   adjacent pairs;
2. drop empty threads, threads, and whole processes (their threads and
   the fork);
3. simplify arguments and mappings;
4. the schedule: truncate, lower choices, zero preemptions, delete choices;
5. when those are stuck and a schedule ``search`` is given, a bounded
   search for a schedule with fewer preemptions, then for removals (an
   operation, a thread, a process) whose old schedule no longer reaches
   the bug -- schedules are relative, so a removed task shifts every later
   choice; then 1-4 again.

``minimize`` is the minimizer of a failing run: its predicate
(``ShowsSignature``) executes the candidate and compares signatures, and
its search explores schedules up to a preemption bound (fuzz/triage/explore.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from fuzz.runtime.executor import execute
from fuzz.program.ops import OPERATIONS, forked_child
from fuzz.program.program import Op, Program, ThreadSpec
from fuzz.triage.signature import signature
from fuzz.program.textcodec import format_program

#: program -> the canonical interesting program, True (the program itself), or None/False
Predicate = Callable[[Program], "Program | bool | None"]
#: (program, preemption bound, most schedules, stop()) -> (interesting program or None,
#: executions spent): a schedule under which the program is interesting
Search = Callable[[Program, int, int, Callable[[], bool]], "tuple[Program | None, int]"]


def sort_key(p: Program) -> tuple:
    return (p.op_count(), len(p.threads), p.preemptions(), sum(p.schedule), len(p.schedule),
            len(p.mappings), sum(m.npages for m in p.mappings), format_program(p))


def size(p: Program) -> dict:
    return {"operations": p.op_count(), "threads": len(p.threads),
            "preemptions": p.preemptions(), "mappings": len(p.mappings)}


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def size_text(d: dict) -> str:
    """A program's size (``size``) as every message and report prints it."""
    return (f"{_count(d['operations'], 'operation')}, {_count(d['threads'], 'thread')}, "
            f"{_count(d['preemptions'], 'preemption')}")


def shrink_text(before: dict, after: dict) -> str:
    """What minimization did: "<size before> -> <size after>"."""
    return f"{size_text(before)} -> {size_text(after)}"


@dataclass
class MinimizeResult:
    program: Program
    before: dict
    after: dict
    runs: int
    seconds: float
    timed_out: bool


class Minimizer:
    """The passes' state: the predicate, its memo, the optional search and the deadline."""

    def __init__(self, interesting: Predicate, *, search: Search | None = None,
                 deadline: float | None = None):
        self.interesting = interesting
        self.search = search
        self.deadline = deadline
        self.memo: dict[str, Program | None] = {}
        self.searched: dict[tuple, Program | None] = {}
        self.runs = 0
        self.timed_out = False

    def out_of_time(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out

    def check(self, cand: Program) -> Program | None:
        """The canonical interesting candidate, or None (each answer memoised)."""
        key = format_program(cand)
        if key in self.memo:
            return self.memo[key]
        self.runs += 1
        got = self.interesting(cand)
        got = cand if got is True else (got or None)
        self.memo[key] = got
        if got is not None:
            self.memo.setdefault(format_program(got), got)
        return got

    def search_schedule(self, cand: Program, bound: int, max_schedules: int) -> Program | None:
        """A schedule under which ``cand`` is interesting, by bounded exploration."""
        if self.search is None:
            return None
        key = (bound, format_program(cand.with_schedule(())))
        if key not in self.searched:
            got, runs = self.search(cand.with_schedule(()), bound, max_schedules,
                                    self.out_of_time)
            self.runs += runs
            self.searched[key] = got
        return self.searched[key]

    def try_all(self, best: Program, candidates) -> Program:
        """Adopt the first candidate that is smaller and still interesting."""
        for cand in candidates:
            if self.out_of_time():
                return best
            if sort_key(cand) >= sort_key(best):
                continue
            got = self.check(cand)
            if got is not None and sort_key(got) < sort_key(best):
                return got
        return best


# -- candidate generators (each yields programs derived from p) --------------------------
def _with_ops(p: Program, i: int, ops) -> Program:
    threads = list(p.threads)
    threads[i] = ThreadSpec(threads[i].pid, tuple(ops))
    return replace(p, threads=tuple(threads))


def drop_trailing_ops(p):
    for i, t in enumerate(p.threads):
        for cut in range(len(t.ops)):
            yield _with_ops(p, i, t.ops[:cut])


def remove_ops(p):
    for i in range(len(p.threads) - 1, -1, -1):
        ops = p.threads[i].ops
        for j in range(len(ops) - 1, -1, -1):
            yield _with_ops(p, i, ops[:j] + ops[j + 1:])


def remove_op_pairs(p):
    for i, t in enumerate(p.threads):
        ops = t.ops
        for j in range(len(ops) - 2, -1, -1):
            yield _with_ops(p, i, ops[:j] + ops[j + 2:])


def drop_empty_threads(p):
    """All empty threads at once, then each (a process's only thread, when empty, runs
    exactly as no thread at all: the process gets one that exits)."""
    empty = [i for i, t in enumerate(p.threads) if not t.ops]
    if len(empty) > 1:
        yield replace(p, threads=tuple(t for t in p.threads if t.ops))
    for i in reversed(empty):
        yield replace(p, threads=p.threads[:i] + p.threads[i + 1:])


def drop_threads(p):
    for i in range(len(p.threads) - 1, -1, -1):
        if len(p.threads) > 1:
            yield replace(p, threads=p.threads[:i] + p.threads[i + 1:])


def drop_processes(p):
    for pid in sorted({t.pid for t in p.threads if t.pid}, reverse=True):
        threads = []
        for t in p.threads:
            if t.pid == pid:
                continue
            ops = tuple(o for o in t.ops if forked_child(o) != pid)
            threads.append(ThreadSpec(t.pid, ops))
        if threads:
            yield replace(p, threads=tuple(threads))


def simplify_args(p):
    for i, t in enumerate(p.threads):
        for j, o in enumerate(t.ops):
            for a, arg in enumerate(OPERATIONS[o.name].args):
                domain = arg.domain
                cur = o.args[a]
                simpler = [domain[0]] if not isinstance(domain, range) else [domain.start, cur - 1]
                for v in simpler:
                    if v == cur or v not in domain or (isinstance(domain, range) and v > cur):
                        continue
                    args = o.args[:a] + (v,) + o.args[a + 1:]
                    ops = t.ops[:j] + (Op(o.name, args),) + t.ops[j + 1:]
                    yield _with_ops(p, i, ops)


def simplify_mappings(p):
    maps = p.mappings
    for k in range(len(maps) - 1, -1, -1):
        yield replace(p, mappings=maps[:k] + maps[k + 1:])
    for k, m in enumerate(maps):
        for simpler in (replace(m, npages=1), replace(m, populate="none"),
                        replace(m, kind="anon", pgoff=0), replace(m, prot="rw"),
                        replace(m, pgoff=0)):
            if simpler != m:
                yield replace(p, mappings=maps[:k] + (simpler,) + maps[k + 1:])


def schedule_passes(p):
    s = p.schedule
    n = len(s)
    for cut in (0, n // 4, n // 2, (3 * n) // 4, n - 1):
        if 0 <= cut < n:
            yield p.with_schedule(s[:cut])
    for k in range(n - 1, -1, -1):
        if s[k]:
            yield p.with_schedule(s[:k] + (0,) + s[k + 1:])
    for k in range(n - 1, -1, -1):
        if s[k] > 1:
            yield p.with_schedule(s[:k] + (s[k] - 1,) + s[k + 1:])
    for k in range(n - 1, -1, -1):
        yield p.with_schedule(s[:k] + s[k + 1:])


def _run_passes(m: Minimizer, best: Program) -> Program:
    """Passes 1-4 until none makes progress."""
    progress = True
    while progress and not m.out_of_time():
        progress = False
        for make in PASSES:
            while True:
                nxt = m.try_all(best, make(best))
                if nxt is best:
                    break
                best = nxt
                progress = True
            if m.out_of_time():
                break
    return best


#: schedules tried per removal in pass 5
REPAIR_SCHEDULES = 400


def _repair_schedules(m: Minimizer, best: Program):
    """Pass 5: a schedule with fewer preemptions for the same program, else the first
    removal that reaches the target under some new schedule."""
    bound = max(best.preemptions(), 1)
    if best.preemptions() > 1:
        got = m.search_schedule(best, best.preemptions() - 1, REPAIR_SCHEDULES)
        if got is not None and sort_key(got) < sort_key(best):
            return got
    for make in (remove_ops, drop_threads, drop_processes):
        for cand in make(best):
            if m.out_of_time():
                return None
            if sort_key(cand.with_schedule(())) >= sort_key(best):
                continue
            got = m.search_schedule(cand, bound, REPAIR_SCHEDULES)
            if got is not None and sort_key(got) < sort_key(best):
                return got
    return None


PASSES = (drop_trailing_ops, remove_ops, remove_op_pairs, drop_empty_threads, drop_threads,
          drop_processes, simplify_args, simplify_mappings, schedule_passes)


def shrink(program: Program, interesting: Predicate, *, search: Search | None = None,
           seconds: float | None = None) -> MinimizeResult:
    """Shrink ``program`` while ``interesting`` holds (see the module docstring). The
    result keeps the program's ``expect`` and ``found-on`` lines; ValueError if the program
    itself is not interesting."""
    start = time.monotonic()
    m = Minimizer(interesting, search=search,
                  deadline=None if seconds is None else start + seconds)
    best = m.check(program)
    if best is None:
        raise ValueError("the program is not interesting: nothing to minimize")
    while not m.out_of_time():
        best = _run_passes(m, best)
        repaired = _repair_schedules(m, best)
        if repaired is None:
            break
        best = repaired
    best = replace(best, expect=program.expect, found_on=program.found_on)
    return MinimizeResult(best, size(program), size(best), m.runs, time.monotonic() - start,
                          m.timed_out)


class ShowsSignature:
    """The predicate of a failing run: a candidate is interesting when its run on the
    variant fails with signature ``target``; the answer is the candidate with the schedule
    its run followed. ``search`` explores schedules for one (fuzz/triage/explore.py)."""

    def __init__(self, variant_cls, variant_name: str, target: str):
        self.variant_cls = variant_cls
        self.variant_name = variant_name
        self.target = target

    def _shows(self, outcome) -> bool:
        return outcome.failed and signature(outcome, self.variant_name) == self.target

    def __call__(self, program: Program) -> Program | None:
        outcome = execute(program, self.variant_cls)
        return program.with_schedule(outcome.schedule) if self._shows(outcome) else None

    def search(self, program: Program, bound: int, max_schedules: int, stop):
        from fuzz.triage.explore import explore
        hits, runs = [], 0

        def run(prog, chooser):
            nonlocal runs
            runs += 1
            outcome = execute(prog, self.variant_cls, chooser)
            if not hits and self._shows(outcome):
                hits.append(prog.with_schedule(outcome.schedule))
            return outcome
        explore(program, self.variant_cls, bound, run=run, max_schedules=max_schedules,
                stop_at_failure=False, stop=lambda: bool(hits) or stop())
        return (hits[0] if hits else None), runs


def minimize(program: Program, variant_cls, variant_name: str, target: str | None = None, *,
             seconds: float | None = 60.0) -> MinimizeResult:
    """Shrink ``program`` while its run on ``variant_cls`` still shows signature ``target``
    (by default the signature of its own run)."""
    first = execute(program, variant_cls)
    if not first.failed:
        raise ValueError("the program does not fail on this variant: nothing to minimize")
    shows = ShowsSignature(variant_cls, variant_name, target or signature(first, variant_name))
    try:
        return shrink(program, shows, search=shows.search, seconds=seconds)
    except ValueError:
        raise ValueError("the program does not show the signature on this variant: "
                         "nothing to minimize") from None
