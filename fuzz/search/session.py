"""One worker's fuzzing session: the messages of a campaign and the execution loop.

The coordinator sends a ``SliceRequest`` (what to do, for how long, the
corpus entries and features this worker has not seen yet -- its cursor);
the worker runs a time slice with one strategy and answers with a
``SliceResult``: new corpus entries, violations (the first of each
signature), statistics. Both are plain data, so a distributed engine could
carry them instead of multiprocessing queues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fuzz.runtime.executor import execute
from fuzz.runtime.linecov import LineCoverage
from fuzz.triage.signature import signature
from fuzz.program.textcodec import ParseError, format_program, parse_program
from model.variants import declared_specs

#: share of a slice spent tracing new corpus entries for line coverage
LINECOV_BUDGET = 0.05
#: seconds between heartbeats
HEARTBEAT_SECONDS = 1.0


@dataclass
class SliceRequest:
    slot: int
    slice_no: int
    strategy: str
    variant: str
    seed: int
    seconds: float | None
    runs: int | None
    corpus_delta: list[str]          # .cow texts of entries the worker has not seen
    feature_delta: list[int]         # features the campaign has that the worker has not seen
    options: dict = field(default_factory=dict)


@dataclass
class NewEntry:
    text: str                        # the program, .cow text, schedule as followed
    features: list[int]              # its features the worker had not seen
    reason: str = "features"         # "features" (interleaving), "smaller" (reaches known
                                     # features more cheaply), "coverage" (libFuzzer kept it)


@dataclass
class Found:
    signature: str
    oracle: str
    program: str                     # .cow text, schedule as followed
    run: int                         # executions into the slice when found
    seconds: float                   # seconds into the slice when found (< 0: before it)


@dataclass
class Heartbeat:
    """Sent during a slice, about once a second: the executions so far."""
    slot: int
    slice_no: int
    runs: int


@dataclass
class SliceResult:
    slot: int
    slice_no: int
    runs: int
    seconds: float
    new_entries: list[NewEntry] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    new_lines: list[str] = field(default_factory=list)
    new_features: list[int] = field(default_factory=list)   # every feature new to this worker
    errors: list[str] = field(default_factory=list)
    edges: int = 0                   # libFuzzer's own coverage counter (coverage strategy)


class Session:
    """Executes programs for a strategy, keeping what is new. Lives as long as its worker."""

    def __init__(self, variant_cls, variant_name: str, workdir=None):
        self.variant_cls = variant_cls
        self.variant_name = variant_name
        #: how a strategy's own processes load the design, when it is the user's
        self.designs = tuple(declared_specs([variant_cls]))
        self.workdir = workdir           # private scratch space (the coverage strategy's)
        self.corpus: list = []
        self.features: set[int] = set()
        self.signatures: set[str] = set()
        self.linecov = LineCoverage()
        self.decisions_avg = 100.0
        self.on_heartbeat = None         # callable(Heartbeat), set by the worker
        self.begin_slice(0, None, None)

    # -- slice bookkeeping -------------------------------------------------------
    def begin_slice(self, slice_no: int, seconds, runs) -> None:
        self.slice_no = slice_no
        self.start = time.monotonic()
        # the slice ends early enough to leave its line-coverage budget inside ``seconds``
        self.deadline = None if seconds is None else self.start + seconds / (1 + LINECOV_BUDGET)
        self.max_runs = runs
        self.runs = 0
        self.new_entries: list[NewEntry] = []
        self.new_features: list[int] = []
        self.found: list[Found] = []
        self.errors: list[str] = []
        self.edges = 0
        self._next_beat = self.start + HEARTBEAT_SECONDS

    def sync(self, corpus_texts, features, *, replay: bool = True) -> None:
        """Take in what the campaign found elsewhere.

        With ``replay`` each entry runs once (not counted as an execution) so
        that its features are known here and a violation it still shows is
        reported (a resumed campaign re-checks its corpus this way); a strategy
        that replays entries itself (libFuzzer does) goes without.
        """
        self.features.update(features)
        for text in corpus_texts:
            try:
                program = parse_program(text, "<corpus>")
            except ParseError:
                continue
            self.corpus.append(program)
            if not replay:
                continue
            outcome = execute(program, self.variant_cls, features=True)
            self.features |= outcome.features
            if outcome.failed:
                self.record(outcome.oracle or outcome.verdict,
                            signature(outcome, self.variant_name),
                            program.with_schedule(outcome.schedule))

    def beat(self, runs: int | None = None, now: float | None = None) -> None:
        """Tell the coordinator how far the slice is (at most once per HEARTBEAT_SECONDS)."""
        now = time.monotonic() if now is None else now
        if self.on_heartbeat is not None and now >= self._next_beat:
            self._next_beat = now + HEARTBEAT_SECONDS
            self.on_heartbeat(Heartbeat(-1, self.slice_no, self.runs if runs is None else runs))

    def done(self) -> bool:
        """Whether the slice is over (strategies ask before each execution)."""
        now = time.monotonic()
        if now >= self._next_beat:
            self.beat(now=now)
        if self.max_runs is not None and self.runs >= self.max_runs:
            return True
        return self.deadline is not None and now >= self.deadline

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    # -- executions --------------------------------------------------------------
    def execute(self, program, chooser=None, *, own_features: bool = False):
        """Run ``program``; keep it in the corpus if it reached a new feature.
        ``own_features``: the chooser computes the execution's features itself (its
        ``features`` attribute, filled as it observes the steps)."""
        outcome = execute(program, self.variant_cls, chooser, features=not own_features)
        if own_features:
            outcome.features = chooser.features
        self.runs += 1
        self.decisions_avg += (outcome.decisions - self.decisions_avg) * 0.05
        new = outcome.features - self.features
        if new:
            self.add(program.with_schedule(outcome.schedule), new)
        if outcome.failed:
            self.record(outcome.oracle or outcome.verdict, signature(outcome, self.variant_name),
                        program.with_schedule(outcome.schedule))
        return outcome

    def add(self, kept, new_features=(), reason: str = "features") -> None:
        """Keep ``kept`` (a program with the schedule it followed) in the corpus."""
        new_features = set(new_features)
        self.features |= new_features
        self.new_features.extend(new_features)
        self.corpus.append(kept)
        self.linecov.add(kept)
        self.new_entries.append(NewEntry(format_program(kept), sorted(new_features), reason))

    def keep(self, program) -> None:
        """Keep a program that another engine judged new (libFuzzer's units), unrun; its
        features are learnt when it is traced for line coverage."""
        self.corpus.append(program)
        self.linecov.add(program)
        self.new_entries.append(NewEntry(format_program(program), [], "coverage"))

    def _traced_run(self, program) -> None:
        outcome = execute(program, self.variant_cls, features=True)
        new = outcome.features - self.features
        if new:
            self.features |= new
            self.new_features.extend(new)

    def record(self, oracle: str, sig: str, program, *, run: int | None = None,
               at: float | None = None) -> None:
        """A violation; only the first of each signature is reported. ``run`` and ``at``
        (a time.monotonic() value) say when, if not now."""
        if sig in self.signatures:
            return
        self.signatures.add(sig)
        at = time.monotonic() if at is None else at
        self.found.append(Found(sig, oracle, format_program(program),
                                self.runs if run is None else run, at - self.start))

    def result(self, slot: int) -> SliceResult:
        spent = time.monotonic() - self.start
        self.linecov.measure(self._traced_run, spent * LINECOV_BUDGET)
        return SliceResult(slot, self.slice_no, self.runs, time.monotonic() - self.start,
                           self.new_entries, self.found, self.linecov.new_lines(),
                           sorted(self.new_features), self.errors, self.edges)
