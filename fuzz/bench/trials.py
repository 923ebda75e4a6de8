"""One benchmark trial: a strategy hunting one variant's bug from an empty corpus.

A trial is one worker session (the campaign's own code path, one core) that
runs slices until the first violation it is looking for -- of an oracle, or
of any -- or until its budget of seconds is spent. It reports how many
executions and seconds that took. Trials are plain data, so a process pool
can run them.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass

from fuzz.search.session import Session
from fuzz.search.strategies import STRATEGIES
from fuzz.search.worker import slice_rng
from model.variants import get_variant

SLICE_SECONDS = 10.0


@dataclass
class Trial:
    variant: str
    strategy: str
    seed: int
    budget: float
    target: str | None              # the oracle looked for; "any"; None: none expected
    found: bool = False
    runs: int = 0                   # executions to the first violation (or in the budget)
    seconds: float = 0.0
    signature: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


class _HuntSession(Session):
    """A session whose slice ends at the first violation it is looking for."""

    target: str | None = None

    def hit(self):
        for found in self.found:
            if self.target == "any" or found.oracle == self.target:
                return found
        return None

    def done(self) -> bool:
        return (self.target is not None and self.hit() is not None) or super().done()


def run_trial(variant: str, strategy: str, seed: int, budget: float,
              target: str | None) -> Trial:
    """Hunt ``target`` ("any", an oracle, or None to just run the budget out)."""
    trial = Trial(variant, strategy, seed, budget, target)
    with tempfile.TemporaryDirectory(prefix="cowfuzz-trial-") as workdir:
        session = _HuntSession(get_variant(variant), variant, workdir)
        session.target = target
        strategy_obj = STRATEGIES[strategy].create(session, {"seed": seed})
        start = time.monotonic()
        runs, slice_no = 0, 0
        try:
            while True:
                left = budget - (time.monotonic() - start)
                if left <= 0:
                    break
                slice_no += 1
                session.begin_slice(slice_no, min(SLICE_SECONDS, left), None)
                strategy_obj.run_slice(slice_rng(seed, 0, slice_no))
                hit = session.hit() if target is not None else None
                if hit is not None:
                    trial.found = True
                    trial.runs = runs + hit.run
                    trial.seconds = session.start + max(hit.seconds, 0.0) - start
                    trial.signature = hit.signature
                    return trial
                if target is None and session.found and trial.signature is None:
                    trial.signature = session.found[0].signature
                runs += session.runs
        finally:
            strategy_obj.close()
    trial.runs = runs
    trial.seconds = time.monotonic() - start
    return trial
