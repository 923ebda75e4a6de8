"""One worker's fuzzing session: the messages of a campaign and the execution loop.

The coordinator sends a ``SliceRequest`` (what to do, for how long, the
corpus entries and features this worker has not seen yet -- its cursor);
the worker runs a time slice with one strategy and answers with a
``SliceResult``: new corpus entries, violations (the first of each
signature), statistics. Both are plain data, so a distributed engine could
carry them instead of multiprocessing queues.

A violation new to the session ends its slice: the worker sends it at
once, so the coordinator saves it within moments of its finding, not at the
end of a ten-second slice. ``on_found`` (the worker's journal) sees it
first.

Corpus entries are known by their content hash: an entry the session has
already is not taken twice (a worker whose cursor was reset gets the whole
corpus again). A request with ``reset`` replaces the session's corpus (the
campaign distilled its queue: fuzz/search/distill.py). Entries to replay
(a resumed campaign's corpus) are run in the background of fuzzing -- at
most ``REPLAY_SHARE`` of the slice's time, a few at a time -- so a restart
from a large corpus fuzzes at once; heartbeats say how far the replay is.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass, field, replace

from fuzz.runtime.executor import execute
from fuzz.runtime.linecov import LineCoverage
from fuzz.triage.signature import signature
from fuzz.program.textcodec import ParseError, format_program, parse_program
from model.variants import declared_specs

#: share of a slice spent tracing new corpus entries for line coverage
LINECOV_BUDGET = 0.05
#: seconds between heartbeats
HEARTBEAT_SECONDS = 1.0
#: share of a slice's time spent replaying received corpus entries, while some wait
REPLAY_SHARE = 0.5
#: seconds of replay at a time, between executions of the strategy
REPLAY_CHUNK = 0.05
#: corpus entries waiting to be traced for line coverage (older ones go untraced)
MAX_LINECOV_PENDING = 2000


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
    elapsed: float = 0.0             # the campaign's seconds when the slice was sent
    runs_before: int = 0             # the campaign's executions when the slice was sent
    reset: bool = False              # corpus_delta is the whole corpus: replace the session's


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
    replayed: int = 0                # corpus entries received and replayed since the last reset


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
    replayed: int = 0                # as in Heartbeat


class Session:
    """Executes programs for a strategy, keeping what is new. Lives as long as its worker."""

    def __init__(self, variant_cls, variant_name: str, workdir=None):
        self.variant_cls = variant_cls
        self.variant_name = variant_name
        #: how a strategy's own processes load the design, when it is the user's
        self.designs = tuple(declared_specs([variant_cls]))
        self.workdir = workdir           # private scratch space (the coverage strategy's)
        self.corpus: list = []
        self.corpus_generation = 0       # +1 when the corpus is replaced (strategies re-read it)
        self.hashes: set[bytes] = set()  # content hashes of the entries in ``corpus``
        self.to_replay: deque = deque()  # received entries not replayed (or handed on) yet
        self.replay_here = True          # False: the strategy replays them (takes them here)
        self.replayed = 0                # received entries replayed (or handed on) since reset
        #: callable(program) -> Outcome that replays a received entry, set by a strategy
        #: that keeps its own record of every entry (the guided engine); None: a plain run
        self.replayer = None
        self.features: set[int] = set()
        self.signatures: set[str] = set()
        self.linecov = LineCoverage()
        self.decisions_avg = 100.0
        self.on_heartbeat = None         # callable(Heartbeat), set by the worker
        self.on_found = None             # callable(Found), set by the worker (its journal)
        self.stopping = False            # set when the campaign is stopping: end the slice now
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
        self.replay_spent = 0.0
        self._next_beat = self.start + HEARTBEAT_SECONDS

    def sync(self, corpus_texts, features, *, replay: bool = True, reset: bool = False) -> None:
        """Take in what the campaign found elsewhere.

        With ``replay`` each entry runs once, in the background of the slice (not
        counted as an execution), so that its features are known here and a
        violation it still shows is reported (a resumed campaign re-checks its
        corpus this way); a strategy that replays entries itself (libFuzzer does)
        goes without. ``reset``: the texts are the whole corpus, replacing this one.
        """
        if reset:
            self.corpus = []
            self.hashes = set()
            self.to_replay.clear()
            self.replayed = 0
            self.linecov.pending.clear()
            self.corpus_generation += 1
        self.features.update(features)
        for text in corpus_texts:
            digest = hashlib.sha1(text.encode()).digest()
            if digest in self.hashes:
                continue
            try:
                program = parse_program(text, "<corpus>")
            except ParseError:
                continue
            self.hashes.add(digest)
            self.corpus.append(program)
            self.to_replay.append(program)
        self.replay_here = replay

    def _replay_some(self, now: float) -> None:
        """Replay received entries for up to REPLAY_CHUNK seconds, while replay has had
        less than REPLAY_SHARE of the slice so far."""
        if self.replay_spent <= (now - self.start) * REPLAY_SHARE:
            self.replay(until=now + REPLAY_CHUNK)
            self.replay_spent += time.monotonic() - now

    def replay(self, until: float | None = None) -> None:
        """Replay received entries until ``until`` (time.monotonic(); None: all of them) or
        a violation."""
        while self.to_replay and not self.found:
            program = self.to_replay.popleft()
            if self.replayer is not None:
                outcome = self.replayer(program)
            else:
                outcome = execute(program, self.variant_cls, features=True)
            self.replayed += 1
            self.features |= outcome.features
            if outcome.failed:
                self.record(outcome.status, signature(outcome, self.variant_name),
                            program.with_schedule(outcome.schedule))
            if until is not None and time.monotonic() >= until:
                break

    def beat(self, runs: int | None = None, now: float | None = None) -> None:
        """Tell the coordinator how far the slice is (at most once per HEARTBEAT_SECONDS)."""
        now = time.monotonic() if now is None else now
        if self.on_heartbeat is not None and now >= self._next_beat:
            self._next_beat = now + HEARTBEAT_SECONDS
            self.on_heartbeat(Heartbeat(-1, self.slice_no, self.runs if runs is None else runs,
                                        self.replayed))

    def done(self) -> bool:
        """Whether the slice is over (strategies ask before each execution): its time or
        runs are spent, it found a new violation, or the campaign is stopping."""
        now = time.monotonic()
        if now >= self._next_beat:
            self.beat(now=now)
        if self.to_replay and self.replay_here and not self.stopping:
            self._replay_some(now)
        if self.found or self.stopping:
            return True
        if self.max_runs is not None and self.runs >= self.max_runs:
            return True
        return self.deadline is not None and now >= self.deadline

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    # -- executions --------------------------------------------------------------
    def execute(self, program, chooser=None, *, own_features: bool = False,
                feedback: bool = True):
        """Run ``program``; keep it in the corpus if it reached a new feature.
        ``own_features``: the chooser computes the execution's features itself (its
        ``features`` attribute, filled as it observes the steps). ``feedback`` False:
        no features at all, only the verdict (nothing joins the corpus)."""
        outcome = execute(program, self.variant_cls, chooser,
                          features=feedback and not own_features)
        if own_features and feedback:
            outcome.features = chooser.features
        self.runs += 1
        self.decisions_avg += (outcome.decisions - self.decisions_avg) * 0.05
        new = outcome.features - self.features
        if new:
            self.add(program.with_schedule(outcome.schedule), new)
        if outcome.failed:
            self.record(outcome.status, signature(outcome, self.variant_name),
                        program.with_schedule(outcome.schedule))
        return outcome

    def add(self, program, new_features=(), reason: str = "features") -> None:
        """Keep ``program`` (with the schedule it followed) in the corpus: it reached
        ``new_features``, or (``reason`` "smaller") known features more cheaply."""
        new_features = set(new_features)
        self.features |= new_features
        self.new_features.extend(new_features)
        kept = replace(program, found_on=self.variant_name)
        self._add(kept, NewEntry(format_program(kept), sorted(new_features), reason))

    def keep(self, program) -> None:
        """Keep a program that another engine judged new (libFuzzer's units), unrun; its
        features are learnt when it is traced for line coverage."""
        kept = replace(program, found_on=self.variant_name)
        self._add(kept, NewEntry(format_program(kept), [], "coverage"))

    def _add(self, program, entry: NewEntry) -> None:
        digest = hashlib.sha1(entry.text.encode()).digest()
        if digest in self.hashes:
            return
        self.hashes.add(digest)
        self.corpus.append(program)
        self.linecov.add(program)
        if len(self.linecov.pending) > MAX_LINECOV_PENDING:
            del self.linecov.pending[:len(self.linecov.pending) - MAX_LINECOV_PENDING]
        self.new_entries.append(entry)

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
        found = Found(sig, oracle, format_program(program), self.runs if run is None else run,
                      at - self.start)
        self.found.append(found)
        if self.on_found is not None:
            self.on_found(found)

    def result(self, slot: int) -> SliceResult:
        spent = time.monotonic() - self.start
        if not self.stopping:
            self.linecov.measure(self._traced_run, spent * LINECOV_BUDGET)
        return SliceResult(slot, self.slice_no, self.runs, time.monotonic() - self.start,
                           self.new_entries, self.found, self.linecov.new_lines(),
                           sorted(self.new_features), self.errors, self.edges, self.replayed)
