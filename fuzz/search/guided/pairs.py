"""Which pairs of operations to race: a choice table learned from the executions.

Most pairs of operations never meet: exit_group() and madvise(MADV_DOFORK) on one
page write nothing in common. A pair program (fuzz/program/generate.py)
spends its execution on whatever pair it draws, and drawn uniformly, the two
operations met in one execution in five (docs/benchmarks.md). syzkaller weighs the next call by which calls it
has seen touch the same resources (its choice table); this table does the same
from the executions themselves: a pair *met* when both raced operations had a step
in a conflict (probe.py: two tasks writing one object, one after the other), and
a pair is drawn by its rate of meeting, (met + 1) / (tried + 2), so that a pair
not tried yet is drawn as if it met half the time. A share (``UNIFORM``) is still
drawn uniformly: a pair that meets only under a rare schedule keeps its chance.
Nothing here is tuned to a bug: the rates come from the run.
"""

from __future__ import annotations

import bisect

from fuzz.program.generate import RACED_PAIRS, raced_ops
from fuzz.runtime.executor import thread_name

#: share of pairs drawn uniformly, whatever the table says
UNIFORM = 0.25
#: the cumulative weights are recomputed after this many updates
REWEIGH = 64


class PairTable:
    def __init__(self):
        self.index = {(a.name, b.name): k for k, (a, b) in enumerate(RACED_PAIRS)}
        self.tried = [0] * len(RACED_PAIRS)
        self.met = [0] * len(RACED_PAIRS)
        self._cumulative: list[float] = []
        self._until = 0

    def draw(self, rng):
        """A pair of operations (``RACED_PAIRS``) to race."""
        if rng.random() < UNIFORM:
            return RACED_PAIRS[rng.randrange(len(RACED_PAIRS))]
        if self._until <= 0:
            self._weigh()
        cumulative = self._cumulative
        k = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
        return RACED_PAIRS[min(k, len(RACED_PAIRS) - 1)]

    def record_run(self, program, probe) -> bool:
        """Record whether a pair program's two raced operations met (``met``), and return
        it."""
        i, j = raced_ops(program)
        meeting = met(program, probe)
        self.record((program.threads[0].ops[i].name, program.threads[1].ops[j].name), meeting)
        return meeting

    def record(self, pair: tuple[str, str], meeting: bool) -> None:
        k = self.index[pair]
        self.tried[k] += 1
        self.met[k] += meeting
        self._until -= 1

    def _weigh(self) -> None:
        total, cumulative = 0.0, []
        for tried, met in zip(self.tried, self.met):
            total += (met + 1) / (tried + 2)
            cumulative.append(total)
        self._cumulative = cumulative
        self._until = REWEIGH


def met(program, probe) -> bool:
    """Whether a pair program's two raced operations met, by its execution's probe: each
    had a step in a conflict."""
    tids = {name: tid for tid, name in probe.names.items()}
    i, j = raced_ops(program)
    return ((tids.get(thread_name(0, 0)), i) in probe.racing
            and (tids.get(thread_name(0, 1)), j) in probe.racing)
