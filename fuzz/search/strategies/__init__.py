"""Search strategies, one small module each, behind one interface.

A strategy is ``run_slice(session, rng, options)``: until ``session.done()``
it generates programs and schedules and runs them with
``session.execute(program, chooser)``, which keeps what is new and records
violations. ``rng`` is the worker's seeded ``random.Random``; the session
persists across slices (corpus, features), so a strategy may keep state
on it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str
    module: str
    description: str
    replays_corpus: bool = False      # runs the entries it receives itself (no sync replay)

    def run_slice(self, session, rng, options) -> None:
        importlib.import_module(f"fuzz.search.strategies.{self.module}").run_slice(session, rng, options)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("coverage", "coverage",
             "libFuzzer (atheris) on the byte form: line coverage of model/ plus interleaving "
             "features, structure-aware mutation and crossover", replays_corpus=True),
    Strategy("random", "random_walk", "random programs, random walk over schedules"),
    Strategy("pct", "pct", "random programs under PCT priority scheduling (depth 3)"),
    Strategy("exhaustive", "exhaustive",
             "small programs, every schedule up to 2 preemptions, fewest first"),
    Strategy("hypothesis", "hypothesis_search",
             "programs drawn by Hypothesis's engine, targeting interleaving features"),
)}
