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
             violations 1 unique/3 hits

Every few seconds the coordinator appends a row to ``plot_data.csv`` in the
campaign folder (the crash folder); ``cowfuzz plot`` draws it (fuzz/plot.py).
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


def status_text(stats) -> str:
    rate = stats.runs / max(stats.elapsed, 1e-9)
    return (f"{_clock(stats.elapsed)}  runs {stats.runs:,} ({rate:,.0f}/s)  "
            f"cov {stats.lines:,} lines  feat {stats.features:,}  corpus {stats.corpus:,}  "
            f"violations {stats.violations} unique/{stats.total_hits} hits")


class PlotData:
    """plot_data.csv: one row every few seconds, continued across resumed runs."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "plot_data.csv"
        self.offset_seconds = 0.0
        self.offset_runs = 0
        if self.path.exists():
            try:
                rows = list(csv.DictReader(self.path.open()))
                if rows:
                    self.offset_seconds = float(rows[-1]["seconds"])
                    self.offset_runs = int(rows[-1]["executions"])
            except (OSError, ValueError, KeyError):
                pass

    def append(self, stats) -> None:
        """One row; OSError if the folder cannot be written."""
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(PLOT_COLUMNS)
            w.writerow([f"{self.offset_seconds + stats.elapsed:.1f}",
                        self.offset_runs + stats.runs,
                        f"{stats.runs / max(stats.elapsed, 1e-9):.0f}", stats.lines,
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

    # -- output ---------------------------------------------------------------------------
    def _line(self, text: str, stream=None) -> None:
        stream = stream or self.err
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=stream, flush=True)

    def _status(self, stats) -> str:
        cfg = self.config
        since = stats.elapsed - stats.last_new
        return (f"{cfg.variant} | {cfg.strategy} x{cfg.jobs} | {status_text(stats)} | "
                f"last new {since:.0f}s ago | nondeterministic {stats.nondeterministic}")

    # -- events ---------------------------------------------------------------------------
    def start(self, cfg, loaded: int, known: int) -> None:
        self.config = cfg
        self.plot = PlotData(cfg.crashes_dir)
        budget = []
        if cfg.seconds is not None:
            budget.append(f"{cfg.seconds:g} s")
        if cfg.runs is not None:
            budget.append(f"{cfg.runs:,} runs")
        self._line(f"cowfuzz: fuzzing {cfg.variant} with {cfg.strategy}, {cfg.jobs} job(s), "
                   f"seed {cfg.seed}, {' or '.join(budget) or 'until interrupted'}; "
                   f"corpus {cfg.corpus_dir} and {cfg.folder / 'queue'} ({loaded} entries), "
                   f"crashes {cfg.crashes_dir} ({known} known)")
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
            self._line(f"cowfuzz: #{stats.runs} NEW corpus {stats.corpus:,} (+{added}) "
                       f"feat {stats.features:,} cov {stats.lines:,} lines")

    def pulse(self, stats, force: bool = False) -> None:
        now = time.monotonic()
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
            self._line(f"cowfuzz: #{stats.runs} pulse {_clock(stats.elapsed)} "
                       f"{stats.runs / max(stats.elapsed, 1e-9):,.0f}/s cov {stats.lines:,} lines "
                       f"feat {stats.features:,} corpus {stats.corpus:,} "
                       f"violations {stats.violations} unique/{stats.total_hits} hits")

    def crash(self, stats, record, token: str, outcome) -> None:
        """The crash folder is already complete on disk when this is called."""
        self._line(token, self.out)
        extra = "" if record.reproduced else " (replay differed: nondeterminism?)"
        self._line(f"cowfuzz: #{stats.runs} CRASH {record.signature}: {outcome.trace.verdict} "
                   f"-> {record.folder}{extra}", self.out)

    def unsaved(self, stats, record, token: str, outcome, error: str) -> None:
        """A violation whose crash folder could not be written: the token keeps it."""
        self._line(token, self.out)
        self._line(f"cowfuzz: #{stats.runs} CRASH {record.signature}: {outcome.trace.verdict} "
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
