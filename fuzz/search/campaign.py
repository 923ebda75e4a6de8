"""The campaign coordinator: ``cowfuzz fuzz``.

The coordinator owns the corpus and crash directories and is their only
writer. Workers (fuzz/search/worker.py, one process per job) run time slices and
send back new corpus entries, violations and statistics; each slot keeps
a cursor into the campaign's entry log and feature log, so a slice request
carries only what that worker has not seen (syzkaller's hub). Messages are
plain data over one connection per worker: a distributed engine can take
the place of the local processes without changing either side.

A violation's first occurrence per signature is replayed here, written
atomically to ``crashes/<variant>/<slug>/`` (input.cow, trace.txt and
report.html -- the reports of fuzz/triage/report.py and fuzz/triage/html_report.py --,
token.txt, meta.json with the first hit and the hits), and only then
reported; minimization runs in a separate
process, capped in time, and adds ``repro.cow`` when it is done. A worker
that dies loses its current slice and is restarted. Killed at any moment,
the campaign leaves complete files only, and running it again resumes
from the corpus (and minimizes crashes left without ``repro.cow``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import multiprocessing.connection
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from fuzz.runtime.executor import execute
from fuzz.search.interrupt import ignore_sigint, sigint_blocked
from fuzz.search.progress import Reporter
from fuzz.triage.html_report import render_html
from fuzz.triage.report import build_report, render_text
from fuzz.search.session import Heartbeat, SliceRequest, SliceResult
from fuzz.triage.signature import signature
from fuzz.search.store import Corpus, CrashStore
from fuzz.program.textcodec import format_program, parse_program
from fuzz.program.replay_token import make_token
from fuzz.search.worker import worker_main
from model.variants import get_variant, load_designs

_MP = multiprocessing.get_context("spawn")


@dataclass
class CampaignConfig:
    variant: str                      # the design's registered name
    strategy: str = "coverage"
    seconds: float | None = 60.0
    runs: int | None = None
    jobs: int = 1
    seed: int = 0
    corpus_dir: Path = Path("corpus")
    crashes_dir: Path = Path("crashes")
    slice_seconds: float = 10.0
    minimize_seconds: float = 60.0
    stop_on_crash: bool = False       # end after the first new violation (libFuzzer's default)
    options: dict = field(default_factory=dict)
    #: the user's designs (``file.py:Class``) that worker processes load: the command line
    #: declared them, so loading them is the user's choice (inputs never name code)
    designs: tuple[str, ...] = ()


@dataclass
class CrashRecord:
    signature: str
    oracle: str
    folder: Path
    new: bool                         # first seen by this campaign (not already on disk)
    reproduced: bool = True
    minimized: dict | None = None     # size after minimization


@dataclass
class CampaignStats:
    started: float
    runs: int = 0
    slices: int = 0
    corpus: int = 0
    features: int = 0
    lines: int = 0
    edges: int = 0
    lost_slices: int = 0
    violations: int = 0               # distinct signatures seen by this campaign
    total_hits: int = 0               # violations reported, duplicates included
    nondeterministic: int = 0         # found violations whose replay differed
    crashes: list[CrashRecord] = field(default_factory=list)
    last_new: float = 0.0             # time of the last new corpus entry
    interrupted: bool = False         # stopped by Ctrl-C

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class _Slot:
    """One worker process and what it has seen."""

    def __init__(self, index: int):
        self.index = index
        self.proc = None
        self.conn = None
        self.entry_cursor = 0
        self.feature_cursor = 0
        self.busy = False
        self.slice_no = 0
        self.requested_runs = 0
        self.inflight_runs = 0            # executions of the current slice, from heartbeats
        self.workdir: str | None = None


class Campaign:
    def __init__(self, config: CampaignConfig, reporter: Reporter | None = None):
        self.config = config
        load_designs(config.designs)
        self.variant_cls = get_variant(config.variant)
        self.reporter = reporter or Reporter()
        self.corpus = Corpus(config.corpus_dir, warn=self.reporter.warning)
        self.crashes = CrashStore(config.crashes_dir)
        self.entry_log: list[tuple[int, str]] = []     # (origin slot, .cow text)
        self.feature_log: list[int] = []
        self.features: set[int] = set()
        self.lines: set[str] = set()
        self.found: set[str] = set()                   # signatures seen by this campaign
        self.hits: dict[str, int] = {}                 # reports per signature
        self.stats = CampaignStats(time.monotonic())
        self.slots = [_Slot(i) for i in range(config.jobs)]
        self.minimizer = None
        self.minimizing: dict = {}                     # signature -> AsyncResult
        self.workroot: Path | None = None              # the workers' scratch directories

    # -- the loop ----------------------------------------------------------------
    def run(self) -> CampaignStats:
        cfg = self.config
        self.crashes.lock()
        loaded = self.corpus.load()
        self.entry_log = [(-1, text) for text in self.corpus.entries]
        self.stats.corpus = len(self.entry_log)
        known = self.crashes.load()
        self.reporter.start(cfg, loaded, known)
        self.stats.started = time.monotonic()
        self.workroot = Path(tempfile.mkdtemp(prefix="cowfuzz-campaign-"))
        try:
            for folder_sig in self._unminimized():
                self._start_minimization(*folder_sig)
            for slot in self.slots:
                self._start_worker(slot)
                self._dispatch(slot)
            while any(s.busy for s in self.slots):
                self._wait_and_handle(timeout=1.0)
                self._collect_minimizations()
                self.reporter.pulse(self.stats)
            self._stop_workers()
            self._finish_minimizations()
        except KeyboardInterrupt:
            self.stats.interrupted = True
            self.reporter.warning("interrupted: stopping workers")
            self._kill_workers()
            self._abandon_minimizations()
        finally:
            shutil.rmtree(self.workroot, ignore_errors=True)   # also what killed workers left
        self.reporter.done(self.stats)
        return self.stats

    def _budget_left(self) -> tuple[float | None, int | None]:
        cfg = self.config
        seconds = None if cfg.seconds is None else cfg.seconds - self.stats.elapsed
        runs = None
        if cfg.runs is not None:
            runs = cfg.runs - self.stats.runs - sum(s.requested_runs - s.inflight_runs
                                                    for s in self.slots if s.busy)
        return seconds, runs

    def _dispatch(self, slot: _Slot) -> None:
        """Send ``slot`` its next slice, or stop it when the budget is spent."""
        cfg = self.config
        seconds, runs = self._budget_left()
        if (seconds is not None and seconds < 0.5) or (runs is not None and runs <= 0) or \
                (cfg.stop_on_crash and self.stats.crashes):
            slot.busy = False
            return
        slice_seconds = cfg.slice_seconds if seconds is None else min(cfg.slice_seconds, seconds)
        slice_runs = None if runs is None else max(1, math.ceil(runs / max(1, len(self.slots))))
        delta = [text for origin, text in self.entry_log[slot.entry_cursor:]
                 if origin != slot.index]
        features = self.feature_log[slot.feature_cursor:]
        slot.entry_cursor = len(self.entry_log)
        slot.feature_cursor = len(self.feature_log)
        slot.slice_no += 1
        slot.requested_runs = slice_runs or 0
        request = SliceRequest(slot.index, slot.slice_no, cfg.strategy, cfg.variant, cfg.seed,
                               slice_seconds, slice_runs, delta, features,
                               {**cfg.options, "seed": cfg.seed, "worker": slot.index,
                                "workers": len(self.slots)})
        try:
            slot.conn.send(request)
            slot.busy = True
        except (BrokenPipeError, OSError):
            self._worker_died(slot)

    def _wait_and_handle(self, timeout: float) -> None:
        busy = [s for s in self.slots if s.busy]
        waitables = {}
        for s in busy:
            waitables[s.conn] = s
            waitables[s.proc.sentinel] = s
        for ready in multiprocessing.connection.wait(list(waitables), timeout=timeout):
            slot = waitables[ready]
            if not slot.busy:
                continue                       # handled through its other waitable
            try:
                result = slot.conn.recv() if ready is slot.conn or slot.conn.poll() else None
            except (EOFError, OSError):
                result = None
            if result is None:
                if slot.proc.is_alive():
                    continue
                self._worker_died(slot)
                continue
            if isinstance(result, Heartbeat):
                self.stats.runs += result.runs - slot.inflight_runs
                slot.inflight_runs = result.runs
                continue
            slot.busy = False
            self.stats.runs -= slot.inflight_runs
            slot.inflight_runs = 0
            self._handle(result)
            self._dispatch(slot)

    # -- workers -------------------------------------------------------------------
    def _start_worker(self, slot: _Slot) -> None:
        parent, child = _MP.Pipe()
        if slot.workdir is not None:
            shutil.rmtree(slot.workdir, ignore_errors=True)    # a dead worker's leftovers
        slot.workdir = tempfile.mkdtemp(prefix=f"worker{slot.index}-", dir=self.workroot)
        slot.proc = _MP.Process(target=worker_main,
                                args=(slot.index, self.config.variant, self.config.designs,
                                      slot.workdir, child),
                                name=f"cowfuzz-worker-{slot.index}", daemon=True)
        with sigint_blocked():
            slot.proc.start()
        child.close()
        slot.conn = parent
        slot.entry_cursor = slot.feature_cursor = 0   # a new process has seen nothing

    def _worker_died(self, slot: _Slot) -> None:
        slot.proc.join(timeout=1)
        self.stats.lost_slices += 1
        self.reporter.warning(f"worker {slot.index} died (exit status {slot.proc.exitcode}); "
                              "its slice is lost, restarting it")
        slot.busy = False
        self.stats.runs -= slot.inflight_runs
        slot.inflight_runs = 0
        slot.conn.close()
        self._start_worker(slot)
        self._dispatch(slot)

    def _stop_workers(self) -> None:
        for slot in self.slots:
            try:
                slot.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for slot in self.slots:
            slot.proc.join(timeout=10)
            if slot.proc.is_alive():
                slot.proc.kill()

    def _kill_workers(self) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(timeout=5)

    # -- results -------------------------------------------------------------------
    def _handle(self, result: SliceResult) -> None:
        st = self.stats
        st.runs += result.runs
        st.slices += 1
        st.edges = max(st.edges, result.edges)
        self.lines.update(result.new_lines)
        st.lines = len(self.lines)
        for error in result.errors:
            self.reporter.warning(f"worker {result.slot}: {error.strip().splitlines()[-1]}")
        added = 0
        for entry in result.new_entries:
            new = [f for f in entry.features if f not in self.features]
            if not new and entry.reason != "coverage":
                continue                      # another worker got there first
            self.features.update(new)
            self.feature_log.extend(new)
            if self.corpus.add(entry.text):
                self.entry_log.append((result.slot, entry.text))
                st.last_new = st.elapsed
                added += 1
        new = [f for f in result.new_features if f not in self.features]
        self.features.update(new)
        self.feature_log.extend(new)
        st.features = len(self.features)
        st.corpus = len(self.entry_log)
        self.reporter.new_entries(st, added)
        for found in result.found:
            self.found.add(found.signature)
            self.hits[found.signature] = self.hits.get(found.signature, 0) + 1
            st.total_hits += 1
            st.violations = len(self.found)
            if found.signature not in self.crashes.known:
                self._save_crash(found)

    def _save_crash(self, found) -> None:
        """Replay, write the crash folder atomically, then report, then minimize."""
        cfg = self.config
        program = replace(parse_program(found.program, "<worker>"), found_on=cfg.variant,
                          expect=((cfg.variant, found.oracle),))
        outcome = execute(program, self.variant_cls)
        reproduced = outcome.failed and signature(outcome, cfg.variant) == found.signature
        if not reproduced:
            self.stats.nondeterministic += 1
        token = make_token(program, cfg.variant)
        execution = self.stats.runs + found.run
        header = (f"# {found.signature}\n# found by the {cfg.strategy} strategy, seed {cfg.seed}, "
                  f"after {execution} executions\n")
        meta = {"signature": found.signature, "hits": self.hits[found.signature],
                "first_hit": {"execution": execution, "seconds": round(self.stats.elapsed, 1),
                              "strategy": cfg.strategy, "seed": cfg.seed}}
        report = build_report(program, cfg.variant, outcome, meta=meta)
        folder = self.crashes.save_new(found.signature, {
            "input.cow": header + format_program(program),
            "token.txt": token + "\n",
            "meta.json": json.dumps(meta, indent=1, sort_keys=True) + "\n",
            "trace.txt": render_text(report),
            "report.html": render_html(report),
        })
        record = CrashRecord(found.signature, found.oracle, folder, True, reproduced)
        self.stats.crashes.append(record)
        self.reporter.crash(self.stats, record, token, outcome)
        self._start_minimization(folder, found.signature)

    # -- minimization ------------------------------------------------------------------
    def _unminimized(self):
        for sig, folder in sorted(self.crashes.known.items()):
            if (folder / "input.cow").exists() and not (folder / "repro.cow").exists():
                yield folder, sig

    def _start_minimization(self, folder: Path, sig: str) -> None:
        if self.minimizer is None:
            with sigint_blocked():
                self.minimizer = _MP.Pool(1, initializer=ignore_sigint)
        text = (folder / "input.cow").read_text()
        self.minimizing[sig] = self.minimizer.apply_async(
            minimize_job, (text, self.config.variant, self.config.designs, sig,
                           self.config.minimize_seconds, _read_meta(folder)))

    def _collect_minimizations(self) -> None:
        for sig in [s for s, r in self.minimizing.items() if r.ready()]:
            pending = self.minimizing.pop(sig)
            try:
                repro, trace, html, before, after = pending.get()
            except Exception as exc:            # e.g. the input no longer fails on replay
                self.reporter.warning(f"minimization of {sig} failed: {exc}")
                continue
            folder = self.crashes.known[sig]
            meta = _read_meta(folder)
            meta.update(hits=max(meta.get("hits", 0), self.hits.get(sig, 0)),
                        size_before=before, size_after=after)
            self.crashes.update(sig, {"meta.json": json.dumps(meta, indent=1, sort_keys=True) + "\n",
                                      "repro.cow": repro,
                                      "trace.txt": trace, "report.html": html})
            for record in self.stats.crashes:
                if record.signature == sig:
                    record.minimized = after
            self.reporter.minimized(sig, self.crashes.known[sig], before, after)

    def _finish_minimizations(self) -> None:
        """Wait for the minimizations still running (each is capped); give up on the rest,
        which the next run of the campaign resumes."""
        if self.minimizing:
            self.reporter.note(f"waiting for {len(self.minimizing)} minimization(s), at most "
                               f"{self.config.minimize_seconds:g} s; the next run finishes "
                               "the rest")
            deadline = time.monotonic() + self.config.minimize_seconds + 5
            while self.minimizing and time.monotonic() < deadline:
                next(iter(self.minimizing.values())).wait(timeout=0.5)
                self._collect_minimizations()
        self._abandon_minimizations()

    def _abandon_minimizations(self) -> None:
        if self.minimizer is not None:
            self.minimizer.terminate()
            self.minimizer.join()
            self.minimizer = None
        self.minimizing.clear()


def _read_meta(folder: Path) -> dict:
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def minimize_job(text: str, variant: str, designs: tuple, sig: str, seconds: float, meta: dict):
    """Minimization process: returns (repro.cow text, trace.txt text, size before, after)."""
    from fuzz.triage.minimize import minimize, shrink_text
    program = parse_program(text, "input.cow")
    load_designs(designs)
    variant_cls = get_variant(variant)
    result = minimize(program, variant_cls, variant, sig, seconds=seconds)
    repro = result.program
    outcome = execute(repro, variant_cls)
    header = (f"# {sig}\n# minimized from input.cow: {shrink_text(result.before, result.after)}"
              f"{' (time cap reached)' if result.timed_out else ''}\n")
    report = build_report(repro, variant, outcome,
                          meta={**meta, "size_before": result.before, "size_after": result.after})
    return (header + format_program(repro), render_text(report), render_html(report),
            result.before, result.after)

