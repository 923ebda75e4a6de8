"""What a campaign shows while it runs, and the plot data it leaves behind.

In a terminal: one live status line (rich) -- variant, strategy, jobs,
elapsed, executions and executions/s, line coverage, interleaving features,
corpus size, violations ("N unique/M hits": distinct signatures, and every
report of one), time since the last new corpus entry, and the
nondeterminism count (found violations whose replay differed; it must stay
0) -- with CRASH and minimization lines printed above it.

Elsewhere (CI, logs): one libFuzzer-style line per event, on stderr, and the
findings on stdout:

    cowfuzz: #12345 NEW corpus 410 (+37) feat 5,012 cov 1,301 lines
    cowfuzz: #15234 pulse 0:00:12 1,270/s cov 1,234 lines feat 4,567 corpus 345
             violations 1 unique/3 hits
    cowfuzz: #16000 CRASH writable-shared:... in a|b -> crashes/upstream/writable-shared-0123456789
    cowfuzz: DONE 0:01:00 runs 76,543 (1,275/s) cov 1,301 lines feat 5,012 corpus 410
             violations 1 unique/3 hits, 1 new

Counters, coverage and time count from the campaign's start, across resumed
runs (fuzz/search/state.py); while the workers replay a resumed campaign's
corpus, the coverage field reads "replaying corpus n/N" instead. Every few
seconds the coordinator appends a row to ``plot_data.csv`` in the crash
folder; ``cowfuzz plot`` draws it (fuzz/plot.py). Its ``execs_per_s`` is the
rate since the previous row.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

PLOT_COLUMNS = ("seconds", "executions", "execs_per_s", "lines", "features", "corpus",
                "unique_violations", "total_violations", "nondeterministic")


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _coverage(stats) -> str:
    if stats.replaying is not None:
        done, total = stats.replaying
        return f"replaying corpus {done:,}/{total:,}"
    return f"cov {stats.lines:,} lines"


def status_text(stats) -> str:
    seconds, runs = stats.total_seconds, stats.total_runs
    new = f", {stats.found_new} new" if stats.found_new else ""
    return (f"{_clock(seconds)}  runs {runs:,} ({runs / max(seconds, 1e-9):,.0f}/s)  "
            f"{_coverage(stats)}  feat {stats.features:,}  corpus {stats.corpus:,}  "
            f"violations {stats.violations} unique/{stats.total_hits} hits{new}")


def _last_row(path: Path) -> dict | None:
    """The last row of a plot_data.csv, read from its end (the file grows for days)."""
    try:
        with path.open("rb") as f:
            header = f.readline().decode()
            f.seek(max(0, f.seek(0, 2) - 4096))
            tail = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    if len(tail) < 1 or not header.strip():
        return None
    rows = list(csv.DictReader([header, tail[-1]]))
    return rows[0] if rows and rows[0].get("seconds") not in (None, "seconds") else None


class PlotData:
    """plot_data.csv: one row every few seconds, continued across resumed runs.

    Rows carry the campaign's counters (they continue across runs); should the
    file be ahead of them (the campaign folder is new, or its counters were
    lost), the time and executions go on from the file's last row instead."""

    def __init__(self, folder: Path, stats):
        self.path = Path(folder) / "plot_data.csv"
        self.offset_seconds = 0.0
        self.offset_runs = 0
        last = _last_row(self.path) if self.path.exists() else None
        if last is not None:
            try:
                self.offset_seconds = max(0.0, float(last["seconds"]) - stats.before_seconds)
                self.offset_runs = max(0, int(last["executions"]) - stats.before_runs)
            except (ValueError, KeyError, TypeError):
                pass
        self.previous: tuple[float, int] | None = None      # (seconds, runs) of the last row

    def append(self, stats) -> None:
        """One row; OSError if the folder cannot be written."""
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        seconds = self.offset_seconds + stats.total_seconds
        runs = self.offset_runs + stats.total_runs
        if self.previous is None:
            rate = stats.runs / max(stats.elapsed, 1e-9)
        else:
            rate = (runs - self.previous[1]) / max(seconds - self.previous[0], 1e-9)
        self.previous = (seconds, runs)
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(PLOT_COLUMNS)
            w.writerow([f"{seconds:.1f}", runs, f"{rate:.0f}", stats.lines,
                        stats.features, stats.corpus, stats.violations, stats.total_hits,
                        stats.nondeterministic])


class Reporter:
    """Events and the status line; ``live`` (default: stderr is a terminal) picks rich."""

    pulse_seconds = 5.0

    def __init__(self, out=None, err=None, quiet: bool = False, live: bool | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self.live = (live if live is not None else self.err.isatty()) and not quiet
        self._last_pulse = time.monotonic()
        self._live = None
        self.config = None
        self.plot: PlotData | None = None
        self.first_run_seen = False

    # -- output ---------------------------------------------------------------------------
    def _line(self, text: str, stream=None) -> None:
        stream = stream or self.err
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=stream, flush=True)

    def _status(self, stats) -> str:
        cfg = self.config
        since = stats.total_seconds - stats.last_new
        return (f"{cfg.variant} | {cfg.strategy} x{cfg.jobs} | {status_text(stats)} | "
                f"last new {since:.0f}s ago | nondeterministic {stats.nondeterministic}")

    # -- events ---------------------------------------------------------------------------
    def start(self, cfg, loaded: int, known: int, workers: str = "", stats=None,
              known_elsewhere: int = 0) -> None:
        """``known``: crash folders on disk; ``known_elsewhere``: more known signatures (the
        seeds' expect lines, --known); ``workers``: what runs the workers."""
        self.config = cfg
        self.plot = PlotData(cfg.crashes_dir, stats) if stats is not None else None
        self.first_run_seen = False
        budget = []
        if cfg.seconds is not None:
            budget.append(f"{cfg.seconds:g} s")
        if cfg.runs is not None:
            budget.append(f"{cfg.runs:,} runs")
        elsewhere = f", {known_elsewhere} more known" if known_elsewhere else ""
        self._line(f"cowfuzz: fuzzing {cfg.variant} with {cfg.strategy}, "
                   f"{workers or f'{cfg.jobs} job(s)'}, "
                   f"seed {cfg.seed}, {' or '.join(budget) or 'until interrupted'}; "
                   f"corpus {cfg.corpus_dir} and {cfg.folder / 'queue'} ({loaded} entries), "
                   f"crashes {cfg.crashes_dir} ({known} known{elsewhere})")
        if stats is not None and stats.before_seconds > 0:
            self._line(f"cowfuzz: resuming the campaign at {_clock(stats.before_seconds)}, "
                       f"{stats.before_runs:,} runs, cov {stats.lines:,} lines, "
                       f"feat {stats.features:,}")
        if self.live:
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text
            self._text = Text
            self._live = Live(Text("starting"), console=Console(file=self.err),
                              refresh_per_second=4, transient=True)
            self._live.start()

    def warning(self, text: str) -> None:
        self._line(f"cowfuzz: {text}")

    def note(self, text: str) -> None:
        if not self.quiet:
            self._line(f"cowfuzz: {text}")

    def new_entries(self, stats, added: int) -> None:
        if added and not self.quiet and not self.live:
            self._line(f"cowfuzz: #{stats.total_runs} NEW corpus {stats.corpus:,} (+{added}) "
                       f"feat {stats.features:,} cov {stats.lines:,} lines")

    def pulse(self, stats, force: bool = False) -> None:
        now = time.monotonic()
        if stats.runs and not self.first_run_seen:
            self.first_run_seen = True
            self.note(f"#{stats.total_runs} fuzzing: first executions {stats.elapsed:.1f} s "
                      "after the start")
        if self._live is not None:
            self._live.update(self._text(self._status(stats)))
        if not force and now - self._last_pulse < self.pulse_seconds:
            return
        self._last_pulse = now
        if self.plot is not None:
            try:
                self.plot.append(stats)
            except OSError as exc:
                self.warning(f"error: {self.plot.path}: cannot write: {exc.strerror or exc}; "
                             "no more plot data this run")
                self.plot = None
        if not self.quiet and not self.live:
            seconds, runs = stats.total_seconds, stats.total_runs
            self._line(f"cowfuzz: #{runs} pulse {_clock(seconds)} "
                       f"{runs / max(seconds, 1e-9):,.0f}/s {_coverage(stats)} "
                       f"feat {stats.features:,} corpus {stats.corpus:,} "
                       f"violations {stats.violations} unique/{stats.total_hits} hits")

    def crash(self, stats, record, token: str, outcome) -> None:
        """The crash folder is already complete on disk when this is called."""
        self._line(token, self.out)
        extra = "" if record.reproduced else " (replay differed: nondeterminism?)"
        if record.known_from:
            extra += f" (known: {record.known_from})"
        self._line(f"cowfuzz: #{stats.total_runs} CRASH {record.signature}: {outcome.trace.verdict} "
                   f"-> {record.folder}{extra}", self.out)

    def unsaved(self, stats, record, token: str, outcome, error: str) -> None:
        """A violation whose crash folder could not be written: the token keeps it."""
        self._line(token, self.out)
        self._line(f"cowfuzz: #{stats.total_runs} CRASH {record.signature}: {outcome.trace.verdict} "
                   f"-> NOT SAVED ({error}); replay it with the token above", self.out)

    def minimized(self, sig: str, folder, before: dict, after: dict) -> None:
        from fuzz.triage.minimize import shrink_text
        self._line(f"cowfuzz: minimized {sig}: {shrink_text(before, after)} "
                   f"-> {folder}/repro.cow", self.out)

    def done(self, stats) -> None:
        self.pulse(stats, force=True)
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._line(f"cowfuzz: DONE {status_text(stats)}", self.out)
