"""Selectively uniform random walk (SURW; Zhao, Wolff, Mathur and Roychoudhury,
"Selectively Uniform Concurrency Testing", ASPLOS'25; shuttle's UniformRandomWalk).

A plain random walk favours interleavings in which tasks switch early: a
task with 2 steps left and one with 200 are picked alike, so the long one
almost never runs to its end first. URW picks a task with probability
proportional to the events it has left, which samples the interleavings of
the tasks' events uniformly. The events counted here are the *interesting*
ones, SURW's selection: steps that change model state. A step that changes
nothing commutes with every other step, so it does not tell interleavings
apart.

The events a task has left are estimated from its program: the interesting
steps of each operation, averaged over earlier executions (``EventCounts``,
which the strategy keeps across executions), summed over the operations it
has not finished, plus -- as URW counts a task's yet-to-be-spawned children
-- the events of the threads of every child its remaining forks create.
"""

from __future__ import annotations

import random

from fuzz.runtime.executor import thread_name

#: events of an operation never seen yet, and of a thread's exit
PRIOR_EVENTS = 4.0
EXIT = "(exit)"


class EventCounts:
    """Interesting steps per operation name, averaged over the executions seen."""

    def __init__(self):
        self.sums: dict[str, list[float]] = {}

    def estimate(self, op: str) -> float:
        s = self.sums.get(op)
        return s[0] / s[1] if s else PRIOR_EVENTS

    def learn(self, op: str, events: int) -> None:
        s = self.sums.get(op)
        if s is None:
            self.sums[op] = [float(events), 1]
        else:
            s[0] += events
            s[1] += 1


class URWChooser:
    """Picks a runnable task with probability proportional to its remaining events."""

    def __init__(self, rng: random.Random, program, counts: EventCounts, fail: float = 0.05):
        self.rng = rng
        self.counts = counts
        self.fail = fail
        #: task name -> the names of its operations, in order
        self.ops: dict[str, tuple[str, ...]] = {}
        #: task name -> the child pids of its forks, in order
        self.forks: dict[str, tuple[int, ...]] = {}
        #: pid -> the task names of its threads
        self.threads: dict[int, list[str]] = {}
        index: dict[int, int] = {}
        for spec in program.threads:
            i = index.get(spec.pid, 0)
            index[spec.pid] = i + 1
            name = thread_name(spec.pid, i)
            self.ops[name] = tuple(op.name for op in spec.ops)
            self.forks[name] = tuple(int(op.args[0]) for op in spec.ops if op.name == "fork")
            self.threads.setdefault(spec.pid, []).append(name)
        self.started: dict[int, int] = {}          # tid -> operations started
        self.current: dict[int, str] = {}          # tid -> the operation it is in
        self.events: dict[int, int] = {}           # tid -> interesting steps in it so far

    # -- what the tasks did -----------------------------------------------------------
    def observe(self, step) -> None:
        tid = step.tid
        current = self.current
        if tid not in self.events:                 # a task's first step: its exit, if no op
            current[tid] = EXIT
            self.events[tid] = 0
        for event in step.events:
            kind = event[0]
            if kind == "op":                       # what ran since the last "ret" was no op
                current[tid] = event[1].split(" ", 1)[0]
                self.started[tid] = self.started.get(tid, 0) + 1
                self.events[tid] = 0
            elif kind == "ret":
                self._finish(tid)
                current[tid] = EXIT
                self.events[tid] = 0
            elif kind == "done":
                self._finish(tid)
        if step.changes and tid in current:
            self.events[tid] += 1

    def _finish(self, tid: int) -> None:
        op = self.current.pop(tid, None)
        if op is not None:
            self.counts.learn(op, self.events.get(tid, 0))

    # -- the estimate ----------------------------------------------------------------
    def _thread_total(self, name: str, depth: int = 0) -> float:
        est = self.counts.estimate
        total = est(EXIT) + sum(est(op) for op in self.ops.get(name, ()))
        if depth < 4:
            for child in self.forks.get(name, ()):
                total += sum(self._thread_total(c, depth + 1) for c in self.threads.get(child, ()))
        return total

    def remaining(self, task) -> float:
        ops = self.ops.get(task.name)
        if ops is None:
            return 1.0                              # setup, teardown
        est = self.counts.estimate
        started = self.started.get(task.tid, 0)
        cur = self.current.get(task.tid)
        left = 0.0
        if cur is not None:
            left += max(1.0, est(cur) - self.events.get(task.tid, 0))
        left += sum(est(op) for op in ops[started:])
        if cur != EXIT:
            left += est(EXIT)
        forks = self.forks.get(task.name, ())
        first = started - 1 if cur not in (None, EXIT) else started    # the op in flight
        pending = sum(1 for op in ops[max(0, first):] if op == "fork")
        for child in forks[len(forks) - pending:]:
            left += sum(self._thread_total(c) for c in self.threads.get(child, ()))
        return max(1.0, left)

    def choose(self, n, label, runnable):
        rng = self.rng
        if runnable is None:
            return 1 if rng.random() < self.fail else 0
        weights = [self.remaining(t) for t in runnable]
        x = rng.random() * sum(weights)
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                return i
        return n - 1
