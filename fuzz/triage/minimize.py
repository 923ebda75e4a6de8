"""The minimizer: deterministic passes, cheapest first, preserving the signature.

Like syzkaller's Minimize and Hypothesis's shrinker: it only calls a
predicate (does this candidate still show the same violation?), memoised
by the candidate's canonical text, and accepts a candidate only if it is
smaller in ``sort_key`` -- operations first, then threads, then
preemptions -- so it terminates, and a pass that made no progress makes
none when run again. Passes, in order:

1. drop trailing operations, then remove operations one at a time and in
   adjacent pairs;
2. drop threads and whole processes (their threads and the fork);
3. simplify arguments and mappings;
4. the schedule: truncate, lower choices, zero preemptions, delete choices;
5. when those are stuck, a bounded search (every schedule up to a
   preemption bound, fewest first; fuzz/strategies/exhaustive.py) for a
   schedule with fewer preemptions, then for removals (an operation, a
   thread, a process) whose old schedule no longer reaches the bug --
   schedules are relative, so a removed task shifts every later choice;
   then 1-4 again.

Every accepted candidate takes the schedule its run actually followed, so
the result is canonical and replays as is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from fuzz.runtime.executor import execute
from fuzz.program.ops import OPERATIONS, forked_child
from fuzz.program.program import Op, Program, ThreadSpec
from fuzz.triage.signature import signature
from fuzz.program.textcodec import format_program


def sort_key(p: Program) -> tuple:
    return (p.op_count(), len(p.threads), p.preemptions(), sum(p.schedule), len(p.schedule),
            len(p.mappings), sum(m.npages for m in p.mappings), format_program(p))


def size(p: Program) -> dict:
    return {"operations": p.op_count(), "threads": len(p.threads),
            "preemptions": p.preemptions(), "mappings": len(p.mappings)}


@dataclass
class MinimizeResult:
    program: Program
    before: dict
    after: dict
    runs: int
    seconds: float
    timed_out: bool


class Minimizer:
    def __init__(self, variant_cls, variant_name: str, target: str, *, deadline: float | None):
        self.variant_cls = variant_cls
        self.variant_name = variant_name
        self.target = target
        self.deadline = deadline
        self.memo: dict[str, bool] = {}
        self.runs = 0
        self.timed_out = False

    def out_of_time(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out

    def check(self, cand: Program):
        """The canonical interesting candidate, or None."""
        key = format_program(cand)
        if self.memo.get(key) is False:
            return None
        self.runs += 1
        outcome = execute(cand, self.variant_cls)
        ok = outcome.failed and signature(outcome, self.variant_name) == self.target
        self.memo[key] = ok
        return cand.with_schedule(outcome.schedule) if ok else None

    def search_schedule(self, cand: Program, bound: int, max_schedules: int):
        """A schedule under which ``cand`` shows the target, by bounded exploration."""
        from fuzz.triage.explore import explore
        key = f"search {bound}\n" + format_program(cand.with_schedule(()))
        if key in self.memo:
            return None
        self.memo[key] = False
        hits = []

        def run(prog, chooser):
            self.runs += 1
            outcome = execute(prog, self.variant_cls, chooser)
            if outcome.failed and not hits and \
                    signature(outcome, self.variant_name) == self.target:
                hits.append(prog.with_schedule(outcome.schedule))
            return outcome
        explore(cand.with_schedule(()), self.variant_cls, bound, run=run,
                max_schedules=max_schedules, stop_at_failure=False,
                stop=lambda: bool(hits) or self.out_of_time())
        return hits[0] if hits else None

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


PASSES = (drop_trailing_ops, remove_ops, remove_op_pairs, drop_threads, drop_processes,
          simplify_args, simplify_mappings, schedule_passes)


def minimize(program: Program, variant_cls, variant_name: str, target: str | None = None, *,
             seconds: float | None = 60.0) -> MinimizeResult:
    """Shrink ``program`` while its run still shows signature ``target`` (by default the
    signature of its own run)."""
    start = time.monotonic()
    first = execute(program, variant_cls)
    if not first.failed:
        raise ValueError("the program does not fail on this variant: nothing to minimize")
    target = target or signature(first, variant_name)
    m = Minimizer(variant_cls, variant_name, target,
                  deadline=None if seconds is None else start + seconds)
    best = program.with_schedule(first.schedule)
    before = size(program)
    while not m.out_of_time():
        best = _run_passes(m, best)
        repaired = _repair_schedules(m, best)
        if repaired is None:
            break
        best = repaired
    best = replace(best, expect=program.expect, found_on=program.found_on)
    return MinimizeResult(best, before, size(best), m.runs, time.monotonic() - start,
                          m.timed_out)
