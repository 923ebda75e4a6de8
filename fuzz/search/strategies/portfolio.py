"""Portfolio: with --jobs N, differently configured strategies share one corpus.

As AFL++ runs one main instance and several differently configured
secondaries, worker 0 runs the guided strategy and the others, in turn,
``SECONDARIES``: guided with more generation (breadth), PCT (long
uninterrupted runs, no feedback) and SURW (uniform interleavings). The
campaign already shares every worker's corpus entries with the others, so
what a secondary finds becomes a seed of the main one. With one job this is
the guided strategy alone. Every member replays what it receives in the
session's background replay (none is libFuzzer, which replays on its own).
"""

from __future__ import annotations

from fuzz.search import strategies

#: (strategy, options) of workers 1, 2, ... (cycled)
SECONDARIES = (("guided", {"generate": 0.5}), ("pct", {}), ("surw", {}), ("guided", {}))


def member(worker: int) -> tuple[str, dict]:
    """The strategy and options worker ``worker`` runs."""
    if worker == 0:
        return "guided", {}
    return SECONDARIES[(worker - 1) % len(SECONDARIES)]


class Portfolio:
    def __init__(self, session, options: dict):
        name, own = member(options.get("worker", 0))
        self.name = name
        self.strategy = strategies.STRATEGIES[name].create(session, {**options, **own})

    def run_slice(self, rng) -> None:
        self.strategy.run_slice(rng)

    def close(self) -> None:
        self.strategy.close()
