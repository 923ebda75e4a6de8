"""The campaign coordinator: ``cowfuzz fuzz``.

The coordinator owns the campaign folder (fuzz/search/store.py: the queue,
the scratch space, the workers' journals, the counters) and the crash
folder, and is the only writer of the queue and the crash folders. Workers
(fuzz/search/worker.py) run time slices and send back new corpus entries,
violations and statistics; each slot keeps a cursor into the campaign's
entry log and feature log, so a slice request carries only what that worker
has not seen (syzkaller's hub), and a worker that has seen nothing (new,
restarted, or after a distillation) gets the whole corpus. The messages are
plain data; what carries them -- local processes, or Ray actors across a
cluster -- is behind one small interface (fuzz/search/transport.py).

A campaign goes on across runs: its counters, coverage and hit counts are
saved every few seconds (fuzz/search/state.py) and a resumed run starts
from them. Its queue stays bounded: past ``--max-queue`` entries it is
distilled in the background (fuzz/search/distill.py). A finding is new
unless its signature is known -- the crash folder's, the seed corpus's
``expect`` lines', ``--known``'s (fuzz/triage/known.py) -- which is what
``--fail-on new`` asks about.

A violation ends the worker's slice, so it arrives within moments of its
finding. Its first occurrence per signature is replayed here, written
atomically to ``crashes/<variant>/<slug>/`` (input.cow, trace.txt and
report.html -- the reports of fuzz/triage/report.py and
fuzz/triage/html_report.py --, token.txt, meta.json with the first hit and
the hits), and only then reported; minimization runs in a separate process
(fuzz/search/minimizer.py) and adds ``repro.cow`` when it is done. A crash
folder that cannot be written costs one error line, and the violation is
printed with its replay token instead. A worker that dies loses its
current slice and is restarted.

Budgets and stops. ``--time`` bounds the whole campaign, minimization
included: slices end at the deadline, and minimization gets what is left
(what is left unminimized, the next run on the crash folder finishes).
SIGINT and SIGTERM stop it within seconds: the workers end their slices
and send what they have, anything they journaled but did not deliver is
saved, minimization is left for the next run, the DONE line is printed.
Killed at any moment, SIGKILL included, the campaign leaves complete files
only, and running it again resumes from the corpus and the queue, saves
what the workers journaled, and minimizes crashes left without
``repro.cow``.
"""

from __future__ import annotations

import json
import math
import multiprocessing.connection
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from fuzz.program.replay_token import make_token
from fuzz.program.textcodec import ParseError, format_program, parse_program, read_input
from fuzz.runtime.executor import execute
from fuzz.search.distill import Distiller
from fuzz.search.minimizer import MIN_JOB_SECONDS, Failed, Minimizer
from fuzz.search.procs import StopSignals
from fuzz.search.progress import Reporter
from fuzz.search.session import Found, Heartbeat, SliceRequest, SliceResult
from fuzz.search.state import CampaignState, Counters
from fuzz.search.store import CampaignFolder, Corpus, CrashStore, DiskError, content_hash, \
    read_journal
from fuzz.search.transport import Lost, Workers
from fuzz.triage.crash_index import read_crashes, render_index_html
from fuzz.triage.html_report import render_html
from fuzz.triage.known import known_signatures
from fuzz.triage.report import build_report, render_text
from fuzz.triage.signature import signature
from model.variants import get_variant, load_designs

#: seconds workers get to end their slices and report once the campaign is stopping
STOP_GRACE = 3.0
#: seconds past the deadline before slices still running are stopped
DEADLINE_GRACE = 1.0
#: the queue is distilled when it holds more entries than this (``--max-queue``); a
#: day of fuzzing would otherwise leave a million files, each replayed at every restart
DEFAULT_MAX_QUEUE = 10_000
#: seconds between two saves of the counters, the hit counts and the crash index
SAVE_SECONDS = 5.0


@dataclass
class CampaignConfig:
    variant: str                      # the design's registered name
    strategy: str = "guided"
    seconds: float | None = 60.0      # the whole campaign, minimization included
    runs: int | None = None
    jobs: int | None = 1              # None: one per CPU of the cluster (one locally)
    seed: int = 0
    corpus_dir: Path = Path("corpus")         # the seeds: read, never written
    crashes_dir: Path = Path("crashes")
    campaign_dir: Path | None = None          # default campaigns/<variant>
    slice_seconds: float = 10.0
    minimize_seconds: float = 60.0
    stop_on_crash: bool = False       # end after the first new violation (libFuzzer's default)
    options: dict = field(default_factory=dict)
    #: the user's designs (``file.py:Class``) that worker processes load: the command line
    #: declared them, so loading them is the user's choice (inputs never name code)
    designs: tuple[str, ...] = ()
    cluster: str | None = None        # a Ray cluster's address, or "auto"; None: local processes
    max_queue: int = DEFAULT_MAX_QUEUE
    #: crash folders and regression corpora whose signatures are known (beside the crash
    #: folder's own and the seed corpus's expect lines)
    known: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        return self.campaign_dir if self.campaign_dir is not None \
            else Path("campaigns") / self.variant


@dataclass
class CrashRecord:
    signature: str
    oracle: str
    folder: Path | None               # None: it could not be saved (the token was printed)
    new: bool                         # first seen by this campaign (not already on disk)
    reproduced: bool = True
    minimized: dict | None = None     # size after minimization
    known_from: str | None = None     # a crash folder or regression test that has it already


@dataclass
class CampaignStats:
    """This run's numbers, and (``total_*``, the rest) the campaign's since its start."""
    started: float
    runs: int = 0                     # executions of this run
    before_seconds: float = 0.0       # the campaign's seconds and executions before this run
    before_runs: int = 0
    slices: int = 0
    corpus: int = 0
    features: int = 0
    lines: int = 0
    edges: int = 0
    lost_slices: int = 0
    violations: int = 0               # distinct signatures the campaign has seen
    total_hits: int = 0               # violations reported, duplicates included
    found_now: int = 0                # distinct signatures this run saw
    found_new: int = 0                # ... of which none was known before it
    nondeterministic: int = 0         # found violations whose replay differed
    crashes: list[CrashRecord] = field(default_factory=list)
    last_new: float = 0.0             # campaign seconds of the last new corpus entry
    interrupted: int | None = None    # the signal that stopped the campaign
    unsaved: int = 0                  # violations that could not be written to disk
    unminimized: int = 0              # crash folders left for the next run to minimize
    replaying: tuple[int, int] | None = None   # corpus entries replayed / to replay
    distilled: int = 0                # distillations of the queue in this run
    worker_errors: list[str] = field(default_factory=list)   # distinct, as reported

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def total_seconds(self) -> float:
        return self.before_seconds + self.elapsed

    @property
    def total_runs(self) -> int:
        return self.before_runs + self.runs


class _Slot:
    """What the coordinator knows of one worker."""

    def __init__(self, index: int):
        self.index = index
        self.entry_cursor = 0
        self.feature_cursor = 0
        self.reset = True                 # the next request carries the whole corpus
        self.busy = False
        self.slice_no = 0
        self.requested_runs = 0
        self.inflight_runs = 0            # executions of the current slice, from heartbeats
        self.dispatched_at = 0.0          # the campaign's seconds when the slice was sent
        self.replay_goal = 0              # entries sent with the last reset
        self.replayed = 0                 # ... replayed so far


def make_workers(config: CampaignConfig, folder: CampaignFolder) -> Workers:
    """Local processes, or Ray actors on ``config.cluster`` (ClusterError if it cannot be
    reached)."""
    if config.cluster is not None:
        from fuzz.search.cluster import RayWorkers
        return RayWorkers(config.cluster, config.jobs, config.variant, config.designs, folder)
    from fuzz.search.local import LocalWorkers
    return LocalWorkers(config.jobs or 1, config.variant, config.designs, folder)


class Campaign:
    def __init__(self, config: CampaignConfig, reporter: Reporter | None = None):
        self.config = config
        load_designs(config.designs)
        self.variant_cls = get_variant(config.variant)
        self.reporter = reporter or Reporter()
        self.folder = CampaignFolder(config.folder)
        self.corpus = Corpus(config.corpus_dir, self.folder.queue, warn=self.reporter.warning)
        self.crashes = CrashStore(config.crashes_dir)
        self.state = CampaignState(config.folder, warn=self.reporter.warning)
        self.entry_log: list[tuple[int, str]] = []     # (origin slot, .cow text): seeds first
        self.seed_count = 0
        self.feature_log: list[int] = []
        self.features: set[int] = set()
        self.lines: set[str] = set()
        self.found: set[str] = set()                   # signatures seen by this run
        self.hits: dict[str, int] = {}                 # reports per signature, campaign-long
        self.dirty_hits: set[str] = set()              # hit counts not written to meta.json
        self.known: dict[str, str] = {}                # signature: where it was known from
        self.printed: set[str] = set()                 # unsaved signatures printed already
        self.unreadable: set[str] = set()              # journal records that did not parse
        self.said: set[str] = set()                    # worker errors reported already
        self.stats = CampaignStats(time.monotonic())
        self.counters = Counters()
        self.workers: Workers | None = None
        self.slots: list[_Slot] = []
        self.minimizer: Minimizer | None = None
        self.distiller: Distiller | None = None
        self.queue_bound = config.max_queue
        self.hold_queue = False                        # send seeds only until distilled
        self.index_stale = False                       # the crash index needs rewriting
        self.saved_at = 0.0
        self.stop = StopSignals()
        self.stopping_since: float | None = None       # when the workers were told to stop

    # -- the run -------------------------------------------------------------------------
    def run(self) -> CampaignStats:
        """Raises Busy (another campaign holds a folder), DiskError (a folder cannot be
        written) or ClusterError (the cluster cannot be reached) before it starts;
        otherwise returns the statistics, interrupted or not."""
        with self.stop:
            self.folder.open()
            try:
                self.crashes.lock()
                self.workers = make_workers(self.config, self.folder)
                self.slots = [_Slot(i) for i in range(self.workers.count)]
                return self._run()
            finally:
                if self.workers is not None:
                    self.workers.kill()
                if self.minimizer is not None:
                    self.minimizer.stop()
                if self.distiller is not None:
                    self.distiller.stop()
                self.corpus.close()
                self.crashes.unlock()
                self.folder.close()

    def _run(self) -> CampaignStats:
        cfg = self.config
        self._resume()
        loaded = self.corpus.load()
        self.seed_count = self.corpus.seed_count
        self.entry_log = [(-1, text) for text in self.corpus.entries]
        self.stats.corpus = len(self.entry_log)
        on_disk = self.crashes.load()
        self.known = {sig: str(folder) for sig, folder in self.crashes.known.items()}
        # the seeds' expect lines (their bad files were reported by the corpus), --known
        for sources, warn in (([cfg.corpus_dir], None), (cfg.known, self.reporter.warning)):
            for sig, where in known_signatures(sources, cfg.variant, self.variant_cls,
                                               warn).items():
                self.known.setdefault(sig, where)
        self.reporter.start(cfg, loaded, on_disk, self.workers.describe(), self.stats,
                            len(self.known) - on_disk)
        self.stats.started = time.monotonic()
        self.minimizer = Minimizer(cfg.variant, cfg.designs, str(self.folder.work),
                                   cfg.minimize_seconds)
        self.distiller = Distiller(cfg.variant, cfg.designs, str(self.folder.work))
        if len(self.entry_log) - self.seed_count > self.queue_bound:
            self.hold_queue = True                     # fuzz from the seeds meanwhile
            self._distill()
        self._recover_journals()                       # what a killed campaign's workers found
        for folder, sig in self._unminimized():
            self._start_minimization(folder, sig)
        for slot in self.slots:
            if self.stop.signum is None:
                self.workers.start(slot.index)
                self._dispatch(slot)
        while True:
            if self.stop.signum is not None or self._past(DEADLINE_GRACE) or \
                    (cfg.stop_on_crash and self.stats.crashes):
                self._stop_slices()
            if not any(s.busy for s in self.slots) or \
                    (self.stopping_since is not None and
                     time.monotonic() - self.stopping_since > STOP_GRACE):
                break
            self._wait_and_handle(timeout=1.0)
            self._poll_minimizations()
            self._poll_distiller()
            self._replay_progress()
            self.reporter.pulse(self.stats)
            self._save()
        self.workers.stop(STOP_GRACE)
        self._recover_journals()                       # sent by a worker, never received
        self._finish_minimizations()
        self.stats.interrupted = self.stop.signum
        self._save(force=True)
        if self.stats.interrupted is not None:
            name = signal.Signals(self.stats.interrupted).name
            self.reporter.warning(f"{name}: stopped; what was found is saved, and the same "
                                  "command resumes the campaign")
        self.reporter.done(self.stats)
        return self.stats

    def _resume(self) -> None:
        """The counters and coverage of the campaign's earlier runs."""
        counters, lines, features = self.state.load()
        counters.resumed += counters.seconds > 0
        self.counters = counters
        st = self.stats
        st.before_seconds, st.before_runs = counters.seconds, counters.runs
        st.slices, st.lost_slices = counters.slices, counters.lost_slices
        st.nondeterministic, st.last_new = counters.nondeterministic, counters.last_new
        self.hits = dict(counters.hits)
        st.violations, st.total_hits = len(self.hits), sum(self.hits.values())
        self.lines, self.features = lines, features
        self.feature_log = sorted(features)
        st.lines, st.features = len(lines), len(features)

    def _save(self, force: bool = False) -> None:
        """Counters (state.json), coverage, hit counts in meta.json, the crash index: every
        SAVE_SECONDS, and at the end. A folder that cannot be written costs one line."""
        now = time.monotonic()
        if not force and now - self.saved_at < SAVE_SECONDS:
            return
        self.saved_at = now
        st = self.stats
        c = self.counters
        c.seconds, c.runs = round(st.total_seconds, 1), st.total_runs
        c.slices, c.lost_slices, c.nondeterministic = st.slices, st.lost_slices, st.nondeterministic
        c.last_new, c.hits = round(st.last_new, 1), dict(self.hits)
        try:
            self.state.save_counters(c)
            self.state.save_coverage(self.lines, self.features, now, force=force)
        except OSError as exc:
            if "state" not in self.said:
                self.said.add("state")
                self.reporter.warning(f"error: {self.state.dir}: cannot write: "
                                      f"{exc.strerror or exc}; counters are not saved")
        self._flush_hits()
        if self.index_stale:
            self._write_index()

    def _seconds_left(self) -> float | None:
        seconds = self.config.seconds
        return None if seconds is None else seconds - self.stats.elapsed

    def _past(self, grace: float) -> bool:
        left = self._seconds_left()
        return left is not None and left < -grace

    def _budget_left(self) -> tuple[float | None, int | None]:
        cfg = self.config
        seconds = self._seconds_left()
        runs = None
        if cfg.runs is not None:
            runs = cfg.runs - self.stats.runs - sum(s.requested_runs - s.inflight_runs
                                                    for s in self.slots if s.busy)
        return seconds, runs

    def _dispatch(self, slot: _Slot) -> None:
        """Send ``slot`` its next slice, or stop it when the budget is spent."""
        cfg = self.config
        seconds, runs = self._budget_left()
        if self.stopping_since is not None or (seconds is not None and seconds < 0.5) or \
                (runs is not None and runs <= 0) or (cfg.stop_on_crash and self.stats.crashes):
            slot.busy = False
            return
        slice_seconds = cfg.slice_seconds if seconds is None else min(cfg.slice_seconds, seconds)
        slice_runs = None if runs is None else max(1, math.ceil(runs / max(1, len(self.slots))))
        reset = slot.reset
        if reset:                             # a worker that has seen nothing, or a new corpus
            slot.entry_cursor = slot.feature_cursor = 0
        limit = self.seed_count if self.hold_queue else len(self.entry_log)
        cursor = min(slot.entry_cursor, limit)
        delta = [text for origin, text in self.entry_log[cursor:limit]
                 if reset or origin != slot.index]
        features = self.feature_log[slot.feature_cursor:]
        slot.entry_cursor = limit
        slot.feature_cursor = len(self.feature_log)
        slot.reset = False
        if reset:
            slot.replay_goal, slot.replayed = len(delta), 0
        slot.slice_no += 1
        slot.requested_runs = slice_runs or 0
        slot.dispatched_at = self.stats.elapsed
        request = SliceRequest(slot.index, slot.slice_no, cfg.strategy, cfg.variant, cfg.seed,
                               slice_seconds, slice_runs, delta, features,
                               {**cfg.options, "seed": cfg.seed, "worker": slot.index,
                                "workers": len(self.slots)},
                               elapsed=slot.dispatched_at, runs_before=self.stats.runs,
                               reset=reset)
        slot.busy = True
        if not self.workers.send(slot.index, request):
            self._worker_lost(slot, "died")

    def _wait_and_handle(self, timeout: float) -> None:
        busy = [s.index for s in self.slots if s.busy]
        messages = self.workers.wait(busy, timeout, self.stop.waitables())
        self.stop.drain()
        for message in messages:
            slot = self.slots[message.slot]
            if not slot.busy:
                continue                       # handled already
            if isinstance(message, Lost):
                self._worker_lost(slot, message.why, quiet=message.quiet)
                continue
            if isinstance(message, Heartbeat):
                self.stats.runs += message.runs - slot.inflight_runs
                slot.inflight_runs = message.runs
                slot.replayed = message.replayed
                continue
            slot.busy = False
            self.stats.runs -= slot.inflight_runs
            slot.inflight_runs = 0
            slot.replayed = message.replayed
            runs_before = self.stats.runs      # every other worker's executions, to now
            dispatched_at = slot.dispatched_at
            self._handle(message)
            # the worker goes on fuzzing while its findings are replayed and written
            if not (self.config.stop_on_crash and
                    any(f.signature not in self.crashes.known for f in message.found)):
                self._dispatch(slot)
            for found in message.found:
                self._hit(found, execution=runs_before + found.run,
                          seconds=dispatched_at + max(found.seconds, 0.0))

    def _replay_progress(self) -> None:
        """(entries replayed, entries to replay) of the slowest worker still replaying."""
        replaying = [(s.replayed, s.replay_goal) for s in self.slots
                     if s.busy and s.replayed < s.replay_goal]
        self.stats.replaying = min(replaying) if replaying else None

    # -- workers -------------------------------------------------------------------------
    def _worker_lost(self, slot: _Slot, why: str, quiet: bool = False) -> None:
        slot.busy = False
        self.stats.runs -= slot.inflight_runs
        slot.inflight_runs = 0
        slot.reset = True                       # its replacement has seen nothing
        if self.stopping_since is not None:
            return                              # told to stop, and it did
        if not quiet:
            self.stats.lost_slices += 1
            self.reporter.warning(f"worker {slot.index} {why}; its slice is lost, "
                                  "restarting it")
        self.workers.start(slot.index)
        self._dispatch(slot)

    def _stop_slices(self) -> None:
        """Ask every worker to end its slice now and send what it has (once)."""
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        self.workers.stop_slices([s.index for s in self.slots if s.busy])

    # -- the queue -------------------------------------------------------------------------
    def _distill(self) -> None:
        """Distill the queue (not the seeds) in the background."""
        queue = [text for _, text in self.entry_log[self.seed_count:]]
        seeds = [text for _, text in self.entry_log[:self.seed_count]]
        self.reporter.note(f"distilling the queue: {len(queue):,} entries")
        self.distiller.start(queue, seeds)

    def _poll_distiller(self) -> None:
        if not self.distiller.running:
            if len(self.entry_log) - self.seed_count > self.queue_bound and \
                    self.stopping_since is None:
                self._distill()
            return
        done = self.distiller.poll()
        if done is None:
            return
        snapshot, kept, why = done
        self.hold_queue = False
        if kept is None:
            self.reporter.warning(f"distillation failed ({why}); the queue is kept whole")
            self.queue_bound *= 2
            for slot in self.slots:
                slot.reset = True
            return
        drop = {content_hash(t) for t in snapshot} - set(kept)
        self.corpus.remove(drop)
        seeds = self.entry_log[:self.seed_count]
        queue = [(o, t) for o, t in self.entry_log[self.seed_count:]
                 if content_hash(t) not in drop]
        self.entry_log = seeds + queue
        self.stats.corpus = len(self.entry_log)
        self.stats.distilled += 1
        kept_now = len(snapshot) - len(drop)
        if kept_now > self.queue_bound // 2:           # not much smaller: distill less often
            self.queue_bound = 2 * kept_now
        self.reporter.note(f"distilled the queue: {len(snapshot):,} -> {kept_now:,} entries, "
                           "every feature kept")
        for slot in self.slots:
            slot.reset = True                   # the next slice replaces each worker's corpus

    # -- results -------------------------------------------------------------------------
    def _handle(self, result: SliceResult) -> None:
        """Statistics and corpus entries of a slice (its findings are taken apart)."""
        st = self.stats
        st.runs += result.runs
        st.slices += 1
        st.edges = max(st.edges, result.edges)
        self.lines.update(result.new_lines)
        st.lines = len(self.lines)
        for error in result.errors:
            line = error.strip().splitlines()[-1] if error.strip() else "error"
            if line not in self.said:           # each distinct error once, not every slice
                self.said.add(line)
                st.worker_errors.append(line)
                self.reporter.warning(f"worker {result.slot}: {line}")
        added = 0
        for entry in result.new_entries:
            new = [f for f in entry.features if f not in self.features]
            if not new and entry.reason != "coverage":
                continue                      # another worker got there first
            self.features.update(new)
            self.feature_log.extend(new)
            if self.corpus.add(entry.text):
                self.entry_log.append((result.slot, entry.text))
                st.last_new = st.total_seconds
                added += 1
        new = [f for f in result.new_features if f not in self.features]
        self.features.update(new)
        self.feature_log.extend(new)
        st.features = len(self.features)
        st.corpus = len(self.entry_log)
        self.reporter.new_entries(st, added)

    def _hit(self, found: Found, *, execution: int, seconds: float) -> None:
        st = self.stats
        sig = found.signature
        if sig not in self.found:
            self.found.add(sig)
            st.found_now += 1
            st.found_new += sig not in self.known
        self.hits[sig] = self.hits.get(sig, 0) + 1
        self.dirty_hits.add(sig)
        st.total_hits += 1
        st.violations = len(self.hits)
        if sig not in self.crashes.known:
            self._save_crash(found, execution, seconds)

    def _flush_hits(self) -> None:
        """The hit counts of the crash folders, in their meta.json (for the crash index)."""
        for sig in sorted(self.dirty_hits):
            folder = self.crashes.known.get(sig)
            if folder is None:
                continue
            meta = _read_meta(folder)
            hits = max(meta.get("hits", 0), self.hits.get(sig, 0))
            if hits != meta.get("hits"):
                meta["hits"] = hits
                try:
                    self.crashes.update(sig, {"meta.json": json.dumps(meta, indent=1,
                                                                      sort_keys=True) + "\n"})
                except DiskError:
                    continue                    # counts only: the next save tries again
                self.index_stale = True
            self.dirty_hits.discard(sig)

    def _write_index(self) -> None:
        """crashes/<variant>/index.html (fuzz/triage/crash_index.py)."""
        self.index_stale = False
        try:
            self.crashes.write_index(render_index_html(read_crashes(self.crashes.dir),
                                                       f"crashes of {self.config.variant}"))
        except DiskError as exc:
            if "index" not in self.said:
                self.said.add("index")
                self.reporter.warning(f"error: the crash index is not written: {exc}")

    def _save_crash(self, found: Found, execution: int, seconds: float) -> None:
        """Replay, write the crash folder atomically, then report, then minimize. A folder
        that cannot be written: one error line, and the token printed instead."""
        cfg = self.config
        program = replace(parse_program(found.program, "<worker>"), found_on=cfg.variant,
                          expect=((cfg.variant, found.oracle),))
        outcome = execute(program, self.variant_cls)
        reproduced = outcome.failed and signature(outcome, cfg.variant) == found.signature
        if not reproduced:
            self.stats.nondeterministic += 1
        token = make_token(program, cfg.variant)
        header = (f"# {found.signature}\n# found by the {cfg.strategy} strategy, seed {cfg.seed}, "
                  f"after {execution} executions\n")
        meta = {"signature": found.signature, "hits": self.hits.get(found.signature, 1),
                "first_hit": {"execution": self.stats.before_runs + execution,
                              "seconds": round(self.stats.before_seconds + seconds, 1),
                              "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "strategy": cfg.strategy, "seed": cfg.seed}}
        known_from = self.known.get(found.signature)
        if known_from is not None:
            meta["known_from"] = known_from
        report = build_report(program, cfg.variant, outcome, meta=meta)
        try:
            folder = self.crashes.save_new(found.signature, {
                "input.cow": header + format_program(program),
                "token.txt": token + "\n",
                "meta.json": json.dumps(meta, indent=1, sort_keys=True) + "\n",
                "trace.txt": render_text(report),
                "report.html": render_html(report),
            })
        except DiskError as exc:
            if found.signature not in self.printed:
                self.printed.add(found.signature)
                self.stats.unsaved += 1
                record = CrashRecord(found.signature, found.oracle, None, True, reproduced,
                                     known_from=known_from)
                self.stats.crashes.append(record)
                self.reporter.unsaved(self.stats, record, token, outcome, str(exc))
            return
        if found.signature in self.printed:     # printed unsaved before, saved now
            self.printed.discard(found.signature)
            self.stats.unsaved -= 1
            self.stats.crashes = [r for r in self.stats.crashes
                                  if r.signature != found.signature]
        record = CrashRecord(found.signature, found.oracle, folder, True, reproduced,
                             known_from=known_from)
        self.stats.crashes.append(record)
        self.dirty_hits.discard(found.signature)
        self.index_stale = True
        self.reporter.crash(self.stats, record, token, outcome)
        self._start_minimization(folder, found.signature)

    def _recover_journals(self) -> None:
        """Save what the workers journaled and the coordinator never received (a worker
        killed after sending, or a campaign killed before saving), then drop the journals
        -- unless something in them could not be saved: the next run tries again."""
        journals = self.folder.journals()
        pending = False
        for path in journals:
            for record in read_journal(path):
                sig = record["signature"]
                if sig in self.crashes.known or sig in self.unreadable:
                    continue
                found = Found(sig, record["oracle"], record["program"],
                              int(record.get("run", 0)), float(record.get("seconds", 0.0)))
                try:
                    self._hit(found, execution=int(record.get("execution", 0)),
                              seconds=float(record.get("campaign_seconds", 0.0)))
                except ParseError as exc:
                    self.reporter.warning(f"{path}: skipping an unreadable finding: {exc}")
                    self.unreadable.add(sig)
                    continue
                pending = pending or sig not in self.crashes.known
        if not pending:
            for path in journals:
                path.unlink(missing_ok=True)

    # -- minimization --------------------------------------------------------------------
    def _unminimized(self):
        for sig, folder in sorted(self.crashes.known.items()):
            if (folder / "input.cow").exists() and not (folder / "repro.cow").exists():
                yield folder, sig

    def _start_minimization(self, folder: Path, sig: str) -> None:
        try:
            text = read_input(folder / "input.cow")
        except ParseError as exc:
            self.reporter.warning(f"cannot minimize {sig}: {exc}")
            return
        except OSError as exc:
            self.reporter.warning(f"cannot minimize {sig}: {folder / 'input.cow'}: "
                                  f"{exc.strerror or exc}")
            return
        self.minimizer.add(sig, text, _read_meta(folder))
        self._poll_minimizations()

    def _poll_minimizations(self) -> None:
        for event in self.minimizer.poll(self._seconds_left()):
            if isinstance(event, Failed):
                self.reporter.warning(f"minimization of {event.signature} failed: {event.why}")
                continue
            sig = event.signature
            folder = self.crashes.known[sig]
            meta = _read_meta(folder)
            meta.update(hits=max(meta.get("hits", 0), self.hits.get(sig, 0)),
                        size_before=event.before, size_after=event.after)
            try:
                self.crashes.update(sig, {
                    "meta.json": json.dumps(meta, indent=1, sort_keys=True) + "\n",
                    "repro.cow": event.repro, "trace.txt": event.trace,
                    "report.html": event.html})
            except DiskError as exc:
                self.reporter.warning(f"error: minimization of {sig} not saved: {exc}")
                continue
            self.index_stale = True
            for record in self.stats.crashes:
                if record.signature == sig:
                    record.minimized = event.after
            self.reporter.minimized(sig, folder, event.before, event.after)

    def _finish_minimizations(self) -> None:
        """Wait for the minimizations still to do while the budget lasts (each is capped);
        a stopped campaign waits for none. The next run finishes the rest."""
        m = self.minimizer
        left = self._seconds_left()
        if m.pending and self.stop.signum is None and (left is None or left >= MIN_JOB_SECONDS):
            self.reporter.note(f"minimizing {m.pending} crash(es)" +
                               (f", at most {left:.0f} s" if left is not None else ""))
        while m.pending and self.stop.signum is None:
            left = self._seconds_left()
            if left is not None and left <= 0:
                break
            multiprocessing.connection.wait(m.waitables() + self.stop.waitables(),
                                            timeout=1.0 if left is None else min(1.0, left))
            self.stop.drain()
            self._poll_minimizations()
            if m.running is None and m.queue and (left is not None and left < MIN_JOB_SECONDS):
                break
        self.stats.unminimized = m.pending
        if m.pending:
            self.reporter.note(f"{m.pending} crash(es) left unminimized: the next run on "
                               f"{self.config.crashes_dir} minimizes them")
        m.stop()


def _read_meta(folder: Path) -> dict:
    try:
        return json.loads(read_input(folder / "meta.json"))
    except (OSError, ValueError):
        return {}
