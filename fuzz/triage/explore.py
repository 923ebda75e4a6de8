"""Exhaustive exploration: every schedule of one program up to a preemption bound.

Schedules are explored in increasing preemption count (0, 1, 2, ...): a
preemption is a non-zero choice. Level k extends each schedule of level
k-1 with one more non-zero choice after its last one, using the decision
widths its run recorded, so every schedule is run exactly once (iterative
context bounding, Musuvathi & Qadeer, PLDI'07). When nothing fails, the
result is a proof for that bound: no violation in N schedules with at
most P preemptions. ``cowfuzz explore``, the minimizer's schedule repair
and the exhaustive search strategy use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fuzz.runtime.choosers import PrefixChooser
from fuzz.runtime.executor import execute


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
                    f"({self.failure.status})")
        status = "all" if self.complete else "budget reached after"
        return (f"no violation: {status} {self.schedules} schedules with at most "
                f"{self.bound} preemptions ({', '.join(map(str, self.per_level))} per level)")


def exploration(program, bound: int, run):
    """Yield (level, outcome) for every schedule of ``program`` with at most ``bound``
    preemptions, level by level; ``run(program, chooser)`` executes one. A generator,
    so a campaign can pause an exploration at a slice's end and resume it. The next
    level's schedules are made one at a time (a long run has thousands of decisions,
    each a branch: listing them all at once would not fit in memory)."""
    level = iter([()])
    for k in range(bound + 1):
        parents = []
        for prefix in level:
            chooser = PrefixChooser(prefix)
            outcome = run(program, chooser)
            yield k, outcome
            if k < bound:
                start = max((i for i, c in enumerate(prefix) if c), default=-1) + 1
                widths = tuple(width for _, width in chooser.decisions[start:])
                if any(width > 1 for width in widths):
                    parents.append((tuple(prefix), start, widths))
        if not parents:
            break
        level = _branches(parents)


def _branches(parents):
    """Each parent schedule extended by one more preemption after its last one."""
    for prefix, start, widths in parents:
        for j, width in enumerate(widths):
            for c in range(1, width):
                yield prefix + (0,) * (start + j - len(prefix)) + (c,)


def explore(program, variant_cls, bound: int = 2, *, run=None, max_schedules: int | None = None,
            seconds: float | None = None, stop_at_failure: bool = True,
            stop=None) -> ExploreResult:
    """Run ``program`` under every schedule with at most ``bound`` preemptions.

    Stops early after ``max_schedules``, ``seconds``, or when ``stop()`` says so.
    """
    run = run or (lambda prog, chooser: execute(prog, variant_cls, chooser))
    deadline = None if seconds is None else time.monotonic() + seconds
    result = ExploreResult(0, bound, True)
    schedules = exploration(program, bound, run)
    while True:
        if (max_schedules is not None and result.schedules >= max_schedules) or \
                (deadline is not None and time.monotonic() > deadline) or \
                (stop is not None and stop()):
            result.complete = False
            break
        try:
            k, outcome = next(schedules)
        except StopIteration:
            break
        result.schedules += 1
        while len(result.per_level) <= k:
            result.per_level.append(0)
        result.per_level[k] += 1
        if outcome.failed and result.failure is None:
            result.failure = outcome
            result.failing_schedule = outcome.schedule
            if stop_at_failure:
                break
    return result
