"""Hypothesis: programs and schedules drawn by Hypothesis's engine (fuzz/hyp.py).

The slice is one long ``@given`` run over ``programs()``. Shrinking is off
(the campaign's minimizer does that once per signature) and so is the
example database (the campaign's corpus is the memory). Options:
``max_threads``, ``max_ops`` (the size of drawn programs) and
``target=True``, which adds Hypothesis's targeted phase, hill-climbing on
the number of interleaving features a program reaches.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, seed, settings, target

from fuzz.hyp import programs


class _SliceOver(Exception):
    """Ends the @given run when the slice is over."""


class HypothesisSearch:
    def __init__(self, session, options: dict):
        self.session = session
        self.strategy = programs(max_threads=options.get("max_threads", 3),
                                 max_ops=options.get("max_ops", 8))
        self.phases = (Phase.generate, Phase.target) if options.get("target") \
            else (Phase.generate,)

    def run_slice(self, rng) -> None:
        session = self.session

        @seed(rng.getrandbits(64))
        @settings(database=None, deadline=None, max_examples=10**9, derandomize=False,
                  phases=self.phases, suppress_health_check=list(HealthCheck),
                  report_multiple_bugs=False)
        @given(self.strategy)
        def search(program):
            if session.done():
                raise _SliceOver
            outcome = session.execute(program)
            target(float(len(outcome.features)), label="features")

        try:
            search()
        except _SliceOver:
            pass

    def close(self) -> None:
        pass
