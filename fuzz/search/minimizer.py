"""The campaign's minimizer: one process beside the workers, one crash at a time.

The coordinator queues the crash folders to minimize; the process shrinks
each input (fuzz/triage/minimize.py) under a time cap and sends back the
texts of ``repro.cow``, ``trace.txt`` and ``report.html``. The coordinator
watches the process as it watches a worker: if it dies, the crash it was
on is given up for this run (the next run on the crash folder retries it),
never waited out; a job that overruns its cap is killed. A job starts
only while the campaign's time budget leaves room for it, and its cap
never reaches past the budget: ``--time`` bounds the whole campaign.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from dataclasses import dataclass

from fuzz.runtime.executor import execute
from fuzz.program.textcodec import format_program, parse_program
from fuzz.search.procs import die_with_parent, release_signals, signals_held, use_tmpdir
from fuzz.triage.html_report import render_html
from fuzz.triage.report import build_report, render_text
from model.variants import get_variant, load_designs

_MP = multiprocessing.get_context("spawn")

#: a job is not started with less time than this left in the campaign
MIN_JOB_SECONDS = 2.0
#: seconds a job may overrun its cap before the process is killed
OVERRUN_SECONDS = 10.0


@dataclass
class Job:
    signature: str
    text: str                # input.cow
    meta: dict


@dataclass
class Minimized:
    signature: str
    repro: str
    trace: str
    html: str
    before: dict
    after: dict


@dataclass
class Failed:
    signature: str
    why: str


class Minimizer:
    def __init__(self, variant: str, designs: tuple, workdir: str, seconds: float):
        self.variant = variant
        self.designs = designs
        self.workdir = workdir
        self.seconds = seconds           # the cap of one job
        self.queue: list[Job] = []
        self.proc = None
        self.conn = None
        self.running: Job | None = None
        self.kill_at = 0.0

    @property
    def pending(self) -> int:
        return len(self.queue) + (self.running is not None)

    def add(self, sig: str, text: str, meta: dict) -> None:
        self.queue.append(Job(sig, text, meta))

    def waitables(self) -> list:
        return [self.conn, self.proc.sentinel] if self.running is not None else []

    def poll(self, seconds_left: float | None) -> list:
        """Collect a finished job (Minimized or Failed) and start the next one if the
        campaign's remaining time (None: no limit) leaves room for it."""
        events = []
        if self.running is not None:
            events += self._collect()
        if self.running is None and self.queue and \
                (seconds_left is None or seconds_left >= MIN_JOB_SECONDS):
            cap = self.seconds if seconds_left is None else \
                min(self.seconds, seconds_left - MIN_JOB_SECONDS / 2)
            self._start(self.queue.pop(0), cap)
        return events

    def _collect(self) -> list:
        job = self.running
        try:
            if self.conn.poll():
                reply = self.conn.recv()
                self.running = None
                return [reply]
        except (EOFError, OSError):
            pass
        if not self.proc.is_alive():
            self.proc.join()
            status = self.proc.exitcode
            self._gone()
            return [Failed(job.signature, f"the minimizer process died (exit status {status}); "
                                          "the next run retries it")]
        if time.monotonic() > self.kill_at:
            self.stop()
            return [Failed(job.signature, "the minimizer overran its time cap and was stopped; "
                                          "the next run retries it")]
        return []

    def _start(self, job: Job, cap: float) -> None:
        if self.proc is None:
            parent, child = _MP.Pipe()
            self.proc = _MP.Process(target=minimizer_main,
                                    args=(self.variant, self.designs, self.workdir, child),
                                    name="cowfuzz-minimizer", daemon=True)
            with signals_held():
                self.proc.start()
            child.close()
            self.conn = parent
        try:
            self.conn.send((job.signature, job.text, cap, job.meta))
        except OSError:
            self.stop()
            self.queue.insert(0, job)
            return
        self.running = job
        self.kill_at = time.monotonic() + cap + OVERRUN_SECONDS

    def _gone(self) -> None:
        self.running = None
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def stop(self) -> None:
        """Kill the process; what it was doing and what is queued is left for the next run."""
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
            self._gone()


def minimizer_main(variant: str, designs: tuple, workdir: str, conn) -> None:
    """Process entry point: minimize each job received, until the connection closes. The
    coordinator alone decides when it stops (a Ctrl-C in the terminal is ignored here)."""
    parent = multiprocessing.parent_process()
    die_with_parent(parent.pid if parent is not None else None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    release_signals()
    use_tmpdir(workdir)
    load_designs(designs)
    variant_cls = get_variant(variant)
    while True:
        try:
            sig, text, cap, meta = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = minimize_job(text, variant, variant_cls, sig, cap, meta)
        except Exception as exc:            # e.g. the input no longer fails on replay
            reply = Failed(sig, str(exc))
        try:
            conn.send(reply)
        except OSError:
            return


def minimize_job(text: str, variant: str, variant_cls, sig: str, seconds: float,
                 meta: dict) -> Minimized:
    from fuzz.triage.minimize import minimize, shrink_text
    program = parse_program(text, "input.cow")
    result = minimize(program, variant_cls, variant, sig, seconds=seconds)
    repro = result.program
    outcome = execute(repro, variant_cls)
    header = (f"# {sig}\n# minimized from input.cow: {shrink_text(result.before, result.after)}"
              f"{' (time cap reached)' if result.timed_out else ''}\n")
    report = build_report(repro, variant, outcome,
                          meta={**meta, "size_before": result.before, "size_after": result.after})
    return Minimized(sig, header + format_program(repro), render_text(report),
                     render_html(report), result.before, result.after)
