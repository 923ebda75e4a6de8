"""One worker's fuzzing session: the messages of a campaign and the execution loop.

The coordinator sends a ``SliceRequest`` (what to do, for how long, and
the corpus entries this worker has not seen yet -- its cursor); the worker
runs a time slice with one strategy and answers with a ``SliceResult``:
new corpus entries (programs that reached new features), violations
(the first of each signature), statistics. Both are plain data, so a
distributed engine could carry them instead of multiprocessing queues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fuzz.executor import execute
from fuzz.signature import signature
from fuzz.textcodec import format_program, parse_program


@dataclass
class SliceRequest:
    slot: int
    strategy: str
    variant: str
    seed: int
    seconds: float | None
    runs: int | None
    corpus_delta: list[str]          # .cow texts the worker has not seen
    known_signatures: list[str]
    options: dict = field(default_factory=dict)


@dataclass
class Found:
    signature: str
    oracle: str
    program: str                     # .cow text, schedule as followed
    run: int                         # executions into the slice when found
    seconds: float


@dataclass
class SliceResult:
    slot: int
    runs: int
    seconds: float
    new_entries: list[str] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    features: int = 0
    points: int = 0
    edges: int = 0                   # libFuzzer's coverage counter (coverage strategy)
    errors: list[str] = field(default_factory=list)


class Session:
    """Executes programs for a strategy, keeping what is new."""

    def __init__(self, variant_cls, variant_name: str):
        self.variant_cls = variant_cls
        self.variant_name = variant_name
        self.corpus: list = []
        self.features: set[int] = set()
        self.points: set[int] = set()
        self.signatures: set[str] = set()
        self.decisions_avg = 100.0
        self.reset_slice(None, None)

    def reset_slice(self, seconds, runs) -> None:
        self.start = time.monotonic()
        self.deadline = None if seconds is None else self.start + seconds
        self.max_runs = runs
        self.runs = 0
        self.new_entries: list[str] = []
        self.found: list[Found] = []

    def add_corpus(self, texts) -> None:
        for text in texts:
            try:
                self.corpus.append(parse_program(text, "<corpus>"))
            except ValueError:
                continue

    def done(self) -> bool:
        if self.max_runs is not None and self.runs >= self.max_runs:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def execute(self, program, chooser=None):
        outcome = execute(program, self.variant_cls, chooser, features=True)
        self.runs += 1
        self.decisions_avg += (outcome.decisions - self.decisions_avg) * 0.05
        self.points |= outcome.points
        new = outcome.features - self.features
        if new:
            self.features |= new
            kept = program.with_schedule(outcome.schedule)
            self.corpus.append(kept)
            self.new_entries.append(format_program(kept))
        if outcome.failed:
            self.record(outcome, program)
        return outcome

    def record(self, outcome, program) -> None:
        sig = signature(outcome, self.variant_name)
        if sig in self.signatures:
            return
        self.signatures.add(sig)
        self.found.append(Found(sig, outcome.oracle or outcome.verdict,
                                format_program(program.with_schedule(outcome.schedule)),
                                self.runs, time.monotonic() - self.start))

    def result(self, slot: int) -> SliceResult:
        return SliceResult(slot, self.runs, time.monotonic() - self.start, self.new_entries,
                           self.found, len(self.features), len(self.points))
