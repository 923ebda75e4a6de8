"""Schedule mutations aimed at the conflicting steps an execution reached.

A conflict is a pair of steps (i, j), i < j, of different tasks A and B that
wrote a common object (probe.py). The order of such a pair is what an
interleaving decides, so these mutations reorder or widen it and leave the
rest to a fresh walk:

* ``swap``: at the decision that started A's step i, run B instead -- B's
  step may now come first;
* ``delay``: at that decision (or the one before B's step j), run any task
  but the one that ran -- a preemption just before the conflicting step;
* ``tighten``: at the first decision after A's step i, run B -- B's step
  follows A's with nothing in between.

Each returns a schedule prefix: the recorded choices up to the edited
decision, the new choice, and -- half the time -- the recorded choices after
it (relative choices, so they mostly keep their meaning).
"""

from __future__ import annotations

import bisect


def _decision_at(decisions, starts, step: int) -> int | None:
    """The last task-choosing decision made before ``step`` started (at or before it)."""
    d = bisect.bisect_right(starts, step) - 1
    while d >= 0 and decisions[d][1] is None:        # a fault-injection decision
        d -= 1
    return d if d >= 0 else None


def _decision_after(decisions, starts, step: int) -> int | None:
    d = bisect.bisect_right(starts, step)
    while d < len(decisions) and decisions[d][1] is None:
        d += 1
    return d if d < len(decisions) else None


def _prefix(rng, choices, d: int, choice: int) -> tuple[int, ...]:
    head = list(choices[:d]) + [choice]
    if rng.random() < 0.5:
        head += choices[d + 1:]
    return tuple(head)


def targeted(rng, choices, decisions, tids, conflict) -> tuple[int, ...] | None:
    """A prefix that reorders or widens ``conflict`` (a pair of steps), or None."""
    i, j = conflict
    b = tids[j]                                        # the task of the later step
    starts = [dec[0] for dec in decisions]
    kind = rng.randrange(4)
    if kind == 0:                                      # swap: B instead of A at i
        d = _decision_at(decisions, starts, i)
        if d is None or b not in decisions[d][1]:
            return None
        return _prefix(rng, choices, d, decisions[d][1].index(b))
    if kind in (1, 2):                                 # delay A before i, or B before j
        d = _decision_at(decisions, starts, i if kind == 1 else j)
        if d is None or len(decisions[d][1]) < 2:
            return None
        runnable = decisions[d][1]
        other = [k for k in range(len(runnable)) if k != decisions[d][2]]
        return _prefix(rng, choices, d, rng.choice(other))
    d = _decision_after(decisions, starts, i)          # tighten: B right after A's step
    if d is None or b not in decisions[d][1] or decisions[d][0] > j:
        return None
    return _prefix(rng, choices, d, decisions[d][1].index(b))
