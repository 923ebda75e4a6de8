"""Choosers: who runs next. One small class each (shuttle's Scheduler trait).

A chooser answers ``choose(n, label, runnable) -> k``: ``runnable`` is in
rotation order starting at the current task (index 0 = keep running it),
or None for a fault-injection decision between 0 (succeed) and 1 (fail).
Whatever a chooser decides, the scheduler records the effective choices,
so every run replays with ``ReplayChooser(outcome.schedule)``.
"""

from __future__ import annotations

import random


class ReplayChooser:
    """Follows a recorded schedule; an exhausted schedule means 0 forever."""

    def __init__(self, choices=()):
        self.choices = tuple(choices)
        self.pos = 0

    def choose(self, n, label, runnable):
        if self.pos < len(self.choices):
            c = self.choices[self.pos]
            self.pos += 1
            return c % n
        self.pos += 1
        return 0


class RandomChooser:
    """A random walk: at each decision switch with probability ``switch`` to a uniformly
    chosen other task; allocation failures with probability ``fail``."""

    def __init__(self, rng: random.Random, switch: float = 0.5, fail: float = 0.1):
        self.rng = rng
        self.switch = switch
        self.fail = fail

    def choose(self, n, label, runnable):
        rng = self.rng
        if runnable is None:
            return 1 if rng.random() < self.fail else 0
        if rng.random() >= self.switch:
            return 0
        return rng.randrange(1, n)


class PCTChooser:
    """PCT, Burckhardt et al., ASPLOS'10: the highest-priority runnable task runs;
    at d-1 random change points the running task drops below every other.

    Priorities are drawn when a task is first seen (tasks are created by
    fork). ``k`` estimates the number of decisions of an execution.
    """

    def __init__(self, rng: random.Random, depth: int = 3, k: int = 100, fail: float = 0.05):
        self.rng = rng
        self.depth = depth
        self.fail = fail
        self.priority: dict[int, float] = {}
        self.change_points = sorted(rng.randrange(1, max(k, 2)) for _ in range(depth - 1))
        self.step = 0
        self.next_low = depth - 1         # change point j sets priority j (below all initial)

    def _prio(self, task) -> float:
        p = self.priority.get(task.tid)
        if p is None:
            p = self.priority[task.tid] = self.depth + self.rng.random()
        return p

    def choose(self, n, label, runnable):
        if runnable is None:
            return 1 if self.rng.random() < self.fail else 0
        self.step += 1
        cur = runnable[0]
        if self.change_points and self.step >= self.change_points[0]:
            self.change_points.pop(0)
            self.priority[cur.tid] = self.next_low
            self.next_low -= 1
        best = max(range(n), key=lambda i: (self._prio(runnable[i]), -i))
        return best


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


class POSChooser:
    """Partial order sampling, Yuan, Yang and Gu, CAV'18 (shuttle's PosScheduler): the
    runnable task with the highest priority runs; after each step the task that ran
    and every task whose next step races with it draw fresh priorities, so racing
    steps are ordered at random while independent ones keep their order.

    The model records what a step wrote, after the fact; a task's next step is
    estimated by what its previous step wrote (a kernel path keeps working on the
    same page, PTE table and locks across its consecutive steps). Two steps race
    when they wrote a common object. Priorities of the other tasks grow by
    ``decay`` per step, so none starves (shuttle's decay).
    """

    def __init__(self, rng: random.Random, fail: float = 0.05, decay: float = 1e-3):
        self.rng = rng
        self.fail = fail
        self.decay = decay
        self.priority: dict[int, float] = {}
        self.wrote: dict[int, frozenset] = {}     # tid -> objects its last step wrote

    def observe(self, step) -> None:
        written = frozenset(id(change[0]) for change in step.changes)
        rng = self.rng
        priority = self.priority
        for tid, before in self.wrote.items():
            if tid != step.tid:
                if written and not written.isdisjoint(before):
                    priority[tid] = rng.random()
                elif tid in priority:
                    priority[tid] += self.decay
        priority[step.tid] = rng.random()
        self.wrote[step.tid] = written

    def choose(self, n, label, runnable):
        if runnable is None:
            return 1 if self.rng.random() < self.fail else 0
        priority = self.priority
        best, best_p = 0, -1.0
        for i, task in enumerate(runnable):
            p = priority.get(task.tid)
            if p is None:
                p = priority[task.tid] = self.rng.random()
            if p > best_p:
                best, best_p = i, p
        return best
