"""Exhaustive: every schedule of one program up to a preemption bound.

Schedules are explored in increasing preemption count (0, 1, 2, ...): a
preemption is a non-zero choice. Level k extends each schedule of level
k-1 with one more non-zero choice after its last one, using the decision
widths its run recorded, so every schedule is run exactly once (iterative
context bounding, Musuvathi & Qadeer, PLDI'07). When nothing fails, the
result is a proof for that bound: no violation in N schedules with at
most P preemptions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fuzz.executor import execute


class PrefixChooser:
    """Follows ``prefix`` then 0, and records each decision's (choice, width)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.decisions: list[tuple[int, int]] = []

    def choose(self, n, label, runnable):
        i = len(self.decisions)
        c = self.prefix[i] % n if i < len(self.prefix) else 0
        self.decisions.append((c, n))
        return c


@dataclass
class ExploreResult:
    schedules: int
    bound: int
    complete: bool                       # every schedule up to the bound was run
    per_level: list[int] = field(default_factory=list)
    failure: object = None               # the first failing Outcome, if any
    failing_schedule: tuple = ()

    def proof_line(self) -> str:
        if self.failure is not None:
            return (f"violation after {self.schedules} schedules "
                    f"({self.failure.oracle or self.failure.verdict})")
        status = "all" if self.complete else "budget reached after"
        return (f"no violation: {status} {self.schedules} schedules with at most "
                f"{self.bound} preemptions ({', '.join(map(str, self.per_level))} per level)")


def explore(program, variant_cls, bound: int = 2, *, run=None, max_schedules: int | None = None,
            seconds: float | None = None, stop_at_failure: bool = True) -> ExploreResult:
    """Run ``program`` under every schedule with at most ``bound`` preemptions."""
    run = run or (lambda prog, chooser: execute(prog, variant_cls, chooser))
    deadline = None if seconds is None else time.monotonic() + seconds
    result = ExploreResult(0, bound, True)
    level = [()]
    for k in range(bound + 1):
        nxt = []
        count = 0
        for prefix in level:
            if (max_schedules is not None and result.schedules >= max_schedules) or \
                    (deadline is not None and time.monotonic() > deadline):
                result.complete = False
                result.per_level.append(count)
                return result
            chooser = PrefixChooser(prefix)
            outcome = run(program, chooser)
            result.schedules += 1
            count += 1
            if outcome.failed and result.failure is None:
                result.failure = outcome
                result.failing_schedule = tuple(c for c, _ in chooser.decisions)
                if stop_at_failure:
                    result.per_level.append(count)
                    return result
            if k < bound:
                last = max((i for i, c in enumerate(prefix) if c), default=-1)
                for i in range(last + 1, len(chooser.decisions)):
                    width = chooser.decisions[i][1]
                    for c in range(1, width):
                        nxt.append(tuple(prefix) + (0,) * (i - len(prefix)) + (c,))
        result.per_level.append(count)
        level = nxt
        if not level:
            break
    return result


def run_slice(session, rng, options) -> None:
    """Campaign strategy: small random programs, each explored up to the bound."""
    from fuzz.generate import random_program
    bound = options.get("bound", 2)
    while not session.done():
        program = random_program(rng, max_threads=2, max_ops=4, schedule_len=0)
        explore(program, session.variant_cls, bound, run=session.execute,
                max_schedules=options.get("max_schedules", 2000), stop_at_failure=False)
