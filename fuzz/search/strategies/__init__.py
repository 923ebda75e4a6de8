"""Search strategies, one class per module, behind one small protocol.

A worker makes one strategy object for the whole campaign,
``STRATEGIES[name].create(session, options)``, and calls
``run_slice(rng)`` once per time slice, then ``close()``. Until
``session.done()`` a slice generates programs and schedules and runs them
with ``session.execute(program, chooser)``, which keeps what is new and
records violations. ``rng`` is the slice's seeded ``random.Random``; what a
strategy remembers between slices lives on the strategy object, never on
the session. ``options`` are the campaign's (``seed``, ``worker``,
``workers``) and the strategy's own knobs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol


class Strategy(Protocol):
    """What a worker drives (shuttle's Scheduler trait, for programs and schedules)."""

    def run_slice(self, rng) -> None:
        """Search until ``session.done()``."""

    def close(self) -> None:
        """Release processes and files (the worker is stopping)."""


@dataclass(frozen=True)
class StrategyInfo:
    """A registry entry: the strategy's name, where its class lives, what it does."""

    name: str
    module: str
    cls: str
    description: str
    replays_corpus: bool = False      # runs the entries it receives itself (no sync replay)

    def create(self, session, options: dict) -> Strategy:
        module = importlib.import_module(f"fuzz.search.strategies.{self.module}")
        return getattr(module, self.cls)(session, dict(options))


STRATEGIES: dict[str, StrategyInfo] = {s.name: s for s in (
    StrategyInfo("coverage", "coverage", "CoverageGuided",
                 "libFuzzer (atheris) on the byte form: line coverage of model/ plus "
                 "interleaving features, structure-aware mutation and crossover",
                 replays_corpus=True),
    StrategyInfo("guided", "guided", "Guided",
                 "pure-Python engine: a corpus guided by interleaving and state coverage, "
                 "programs re-run with fresh interleavings, rare features favoured, "
                 "schedule mutations aimed at conflicting steps"),
    StrategyInfo("portfolio", "portfolio", "Portfolio",
                 "with --jobs N: guided on the first worker, differently configured "
                 "strategies (guided with more generation, pct, surw) on the others, "
                 "one shared corpus; with one job, guided"),
    StrategyInfo("random", "random_walk", "RandomWalk",
                 "random programs, random walk over schedules"),
    StrategyInfo("pct", "pct", "Pct", "random programs under PCT priority scheduling (depth 3)"),
    StrategyInfo("pos", "pos", "Pos",
                 "random programs under partial order sampling (priorities re-drawn for "
                 "racing tasks)"),
    StrategyInfo("surw", "surw", "Surw",
                 "random programs under a selectively uniform random walk (tasks weighted "
                 "by their remaining state-changing steps)"),
    StrategyInfo("exhaustive", "exhaustive", "Exhaustive",
                 "small programs, every schedule up to 2 preemptions, fewest first"),
    StrategyInfo("hypothesis", "hypothesis_search", "HypothesisSearch",
                 "programs drawn by Hypothesis's engine, targeting interleaving features"),
)}
