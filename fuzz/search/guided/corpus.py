"""The engine's corpus and its power schedule.

Every entry is a program with the schedule it followed, plus what its
execution showed: its features, its decisions and its conflicting steps
(probe.py). ``hits`` counts, for every feature, the executions that reached
it.

Each feature is owned by the cheapest entry that reaches it (fewest steps:
AFL's favoured entries), and its weight, 1 / hits, goes to that owner only.
An entry's energy is the weight of the features it owns, so an entry that
owns a feature few executions reach gets picked far more often than one
whose features every execution reaches, or that others reach more cheaply
(libFuzzer's Entropic and RFF's rare reads-from pairs favour rare features
the same way). Picking an entry re-runs it, which makes its features less
rare: energy balances itself. Energy is recomputed every ``REWEIGH``
executions, not per pick.
"""

from __future__ import annotations

import bisect

REWEIGH = 256
#: share of picks by rarity; the others go by interleaving potential: conflicting step
#: pairs per step of the entry's execution (small programs whose threads meet often)
RARITY_SHARE = 0.5


class Entry:
    __slots__ = ("program", "features", "choices", "decisions", "tids", "conflicts", "picked",
                 "cost", "energy", "racing", "names")

    def __init__(self, program, features, probe):
        self.program = program
        self.features = tuple(sorted(features))
        self.cost = probe.steps if probe is not None else 1
        self.racing = probe.racing if probe is not None else set()
        self.names = probe.names if probe is not None else {}
        self.energy = 0.0
        self.decisions = probe.decisions if probe is not None else []
        self.choices = tuple(d[2] for d in self.decisions)
        self.tids = probe.tids if probe is not None else []
        self.conflicts = probe.conflicts if probe is not None else []
        self.picked = 0


#: an execution that reaches a rare feature (fewer than RARE executions reached it) in at
#: most REDUCE of its owner's steps joins the corpus (libFuzzer's -reduce_inputs): rare
#: features drift to small programs, where fewer steps stand between a schedule and
#: the window it must hit
REDUCE = 0.6
RARE = 16


class Corpus:
    def __init__(self):
        self.entries: list[Entry] = []
        self.hits: dict[int, int] = {}
        #: feature -> its cheapest entry (the earliest of the cheapest), kept as entries
        #: come, so that weighing costs one pass over the features, not over every entry's
        self.owner: dict[int, Entry] = {}
        self._cumulative: list[float] = []
        self._potential: list[float] = []
        self._until = 0

    def __len__(self) -> int:
        return len(self.entries)

    def count(self, features) -> None:
        hits = self.hits
        for f in features:
            hits[f] = hits.get(f, 0) + 1
        self._until -= 1

    def reduces(self, features, cost: int) -> bool:
        """Whether an execution of ``cost`` steps reaches one of the rare ``features``
        much more cheaply than the entry that owns it."""
        owner = self.owner
        hits = self.hits
        limit = cost / REDUCE
        for f in features:
            cur = owner.get(f)
            if cur is not None and cur.cost > limit and hits.get(f, 0) < RARE:
                return True
        return False

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        owner = self.owner
        for f in entry.features:
            cur = owner.get(f)
            if cur is None or entry.cost < cur.cost:
                owner[f] = entry
        self._until = min(self._until, 16)   # weigh the newcomer soon

    def weigh(self) -> None:
        """Give each feature's weight to its cheapest entry."""
        hits = self.hits
        for e in self.entries:
            e.energy = 0.0
        for f, e in self.owner.items():
            e.energy += 1.0 / hits.get(f, 1)
        total = potential = 0.0
        cumulative, potentials = [], []
        for e in self.entries:
            decay = 1.0 + 0.1 * e.picked
            total += e.energy / decay + 1e-9
            cumulative.append(total)
            potential += len(e.conflicts) / (e.cost * decay) + 1e-9
            potentials.append(potential)
        self._cumulative = cumulative
        self._potential = potentials
        self._until = REWEIGH

    def pick(self, rng) -> Entry:
        if self._until <= 0 or not self._cumulative:
            self.weigh()
        # entries added since the last weighing wait for the next one
        cumulative = self._cumulative if rng.random() < RARITY_SHARE else self._potential
        x = rng.random() * cumulative[-1]
        entry = self.entries[min(bisect.bisect_right(cumulative, x), len(cumulative) - 1)]
        entry.picked += 1
        return entry
