"""One benchmark trial: a strategy hunting one variant's bug from an empty corpus.

A trial is one worker session (the campaign's own code path, one core) that
runs slices until the first violation it is looking for -- of an oracle, or
of any, that the design the variant changes does not show -- or until its
budget of seconds is spent. It reports how many executions and seconds that
took. Slices are counted in executions, not seconds, so a seed makes the same
executions in every trial of it (``python -m fuzz.bench.depth`` counts them to
the same find), whatever the machine's load. Trials are plain data, so a
process pool can run them.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass

from fuzz.program.textcodec import parse_program
from fuzz.runtime.executor import execute
from fuzz.search.session import Session
from fuzz.search.strategies import STRATEGIES
from fuzz.search.worker import slice_rng
from model.variants import base_design, get_variant

#: executions per slice: a new slice draws a new random generator from the seed
SLICE_RUNS = 2000


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
    """A session whose slice ends at the first violation it is looking for: of the target
    oracle, and one the design the variant changes (``base_design``) does not show on the
    same program and schedule. clear-refs-read-lock is put into reuse-refcount, whose
    page_count-based COW loses a /proc/pid/mem write that races another write fault:
    that lost write is reuse-refcount's bug, not clear_refs'.

    A signature is coarse (oracle, function, message), so the variant's own bug and its
    base's can share one: a signature whose first program was the base's bug is judged
    again on the next program that shows it, where a session reports only the first of
    each signature. Otherwise the trial could never find its bug after that: swapout-pinned
    with ``guided``, seed 5, hit swapout-pinned-race's VM_BUG_ON at execution 395 and then
    missed within 120,000."""

    target: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._judged: dict[str, bool] = {}      # signature -> the variant's own bug

    def record(self, oracle: str, sig: str, program, **kwargs) -> None:
        if self._judged.get(sig) is False:              # so far only the base's bug
            del self._judged[sig]
            self.signatures.discard(sig)
            self.found = [f for f in self.found if f.signature != sig]
        super().record(oracle, sig, program, **kwargs)

    def hit(self):
        for found in self.found:
            if (self.target == "any" or found.oracle == self.target) and self._own(found):
                return found
        return None

    def _own(self, found) -> bool:
        own = self._judged.get(found.signature)
        if own is None:
            base = execute(parse_program(found.program), base_design(self.variant_cls))
            own = self._judged[found.signature] = not base.failed or (
                self.target != "any" and base.status != found.oracle)
        return own

    def done(self) -> bool:
        return (self.target is not None and self.hit() is not None) or super().done()


def hunt(variant: str, strategy: str, seed: int, target: str | None, *,
         seconds: float | None = None, runs: int | None = None,
         options: dict | None = None) -> Trial:
    """Hunt ``target`` ("any", an oracle, or None to just spend the budget) for at most
    ``seconds`` or ``runs`` executions. Slices are ``SLICE_RUNS`` executions each, never a
    time span, so the executions a seed makes are the same on any machine and at any
    load; the clock only decides where a timed trial stops."""
    trial = Trial(variant, strategy, seed, seconds if seconds is not None else 0.0, target)
    with tempfile.TemporaryDirectory(prefix="cowfuzz-trial-") as workdir:
        session = _HuntSession(get_variant(variant), variant, workdir)
        session.target = target
        strategy_obj = STRATEGIES[strategy].create(session, {**(options or {}), "seed": seed})
        start = time.monotonic()
        spent, slice_no = 0, 0
        try:
            while runs is None or spent < runs:
                left = None if seconds is None else seconds - (time.monotonic() - start)
                if left is not None and left <= 0:
                    break
                slice_no += 1
                session.begin_slice(slice_no, left, SLICE_RUNS if runs is None
                                    else min(SLICE_RUNS, runs - spent))
                strategy_obj.run_slice(slice_rng(seed, 0, slice_no))
                hit = session.hit() if target is not None else None
                if hit is not None:
                    trial.found = True
                    trial.runs = spent + hit.run
                    trial.seconds = session.start + max(hit.seconds, 0.0) - start
                    trial.signature = hit.signature
                    return trial
                if target is None and session.found and trial.signature is None:
                    trial.signature = session.found[0].signature
                spent += session.runs
        finally:
            strategy_obj.close()
    trial.runs = spent
    trial.seconds = time.monotonic() - start
    return trial


def run_trial(variant: str, strategy: str, seed: int, budget: float,
              target: str | None) -> Trial:
    """One trial of the bug benchmark: ``budget`` seconds on one core."""
    return hunt(variant, strategy, seed, target, seconds=budget)
