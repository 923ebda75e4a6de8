"""The engine's corpus and its power schedule.

Every entry is a program with the schedule it followed, plus what its
execution showed: its features, its decisions and its conflicting steps
(probe.py). ``hits`` counts, for every feature, the executions that reached
it. An entry's energy is the sum over its features of 1 / hits: an entry
that alone reaches a feature few executions reach gets picked far more often
than one whose features every execution reaches (libFuzzer's Entropic and
RFF's rare reads-from pairs favour rare features the same way). Energy is
recomputed every ``REWEIGH`` executions, not per pick.
"""

from __future__ import annotations

import bisect
import itertools

REWEIGH = 256


class Entry:
    __slots__ = ("program", "features", "choices", "decisions", "tids", "conflicts", "picked")

    def __init__(self, program, features, probe):
        self.program = program
        self.features = tuple(sorted(features))
        self.decisions = probe.decisions if probe is not None else []
        self.choices = tuple(d[2] for d in self.decisions)
        self.tids = probe.tids if probe is not None else []
        self.conflicts = probe.conflicts if probe is not None else []
        self.picked = 0


class Corpus:
    def __init__(self):
        self.entries: list[Entry] = []
        self.hits: dict[int, int] = {}
        self._cumulative: list[float] = []
        self._until = 0

    def __len__(self) -> int:
        return len(self.entries)

    def count(self, features) -> None:
        hits = self.hits
        for f in features:
            hits[f] = hits.get(f, 0) + 1
        self._until -= 1

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        if self._cumulative:                 # weighed now, reweighed with the others later
            self._cumulative.append(self._cumulative[-1] + self.energy(entry))

    def energy(self, entry: Entry) -> float:
        hits = self.hits
        return sum(1.0 / hits.get(f, 1) for f in entry.features) / (1.0 + 0.1 * entry.picked)

    def pick(self, rng) -> Entry:
        if self._until <= 0 or not self._cumulative:
            self._cumulative = list(itertools.accumulate(self.energy(e) for e in self.entries))
            self._until = REWEIGH
        x = rng.random() * self._cumulative[-1]
        entry = self.entries[min(bisect.bisect_right(self._cumulative, x), len(self.entries) - 1)]
        entry.picked += 1
        return entry
