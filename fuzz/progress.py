"""What a campaign prints: a progress line every few seconds, events, one summary.

Plain lines on stderr (findings on stdout), libFuzzer-style, so a log
reads like one:

    cowfuzz: pulse 0:00:12  runs 15,234 (1,270/s)  cov 1,234 lines  feat 4,567  corpus 345  violations 1
    cowfuzz: CRASH writable-shared:upstream:a|b -> crashes/upstream/writable-shared-0123456789
    cowfuzz: DONE 0:01:00  runs 76,543 (1,275/s)  cov 1,301 lines  feat 5,012  corpus 410  violations 1 (1 new)
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def status_text(stats) -> str:
    rate = stats.runs / max(stats.elapsed, 1e-9)
    new = sum(1 for c in stats.crashes if c.new)
    text = (f"{_clock(stats.elapsed)}  runs {stats.runs:,} ({rate:,.0f}/s)  "
            f"cov {stats.lines:,} lines  feat {stats.features:,}  corpus {stats.corpus:,}  "
            f"violations {stats.violations}")
    if stats.violations:
        text += f" ({new} new)"
    return text


class Reporter:
    pulse_seconds = 5.0

    def __init__(self, out=None, err=None, quiet: bool = False):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self._last_pulse = time.monotonic()

    def _line(self, text: str, stream=None) -> None:
        stream = stream or self.err
        print(text, file=stream, flush=True)

    def start(self, cfg, loaded: int, known: int) -> None:
        budget = []
        if cfg.seconds is not None:
            budget.append(f"{cfg.seconds:g} s")
        if cfg.runs is not None:
            budget.append(f"{cfg.runs:,} runs")
        self._line(f"cowfuzz: fuzzing {cfg.variant} with {cfg.strategy}, {cfg.jobs} job(s), "
                   f"seed {cfg.seed}, {' or '.join(budget) or 'until interrupted'}; "
                   f"corpus {cfg.corpus_dir} ({loaded} entries), crashes {cfg.crashes_dir} "
                   f"({known} known)")

    def warning(self, text: str) -> None:
        self._line(f"cowfuzz: {text}")

    def note(self, text: str) -> None:
        if not self.quiet:
            self._line(f"cowfuzz: {text}")

    def new_entry(self, stats, text: str) -> None:
        pass

    def pulse(self, stats) -> None:
        now = time.monotonic()
        if now - self._last_pulse >= self.pulse_seconds:
            self._last_pulse = now
            if not self.quiet:
                self._line(f"cowfuzz: pulse {status_text(stats)}")

    def crash(self, stats, record, token: str, outcome) -> None:
        """The crash folder is already complete on disk when this is called."""
        self._line(token, self.out)
        extra = "" if record.reproduced else " (replay differed: nondeterminism?)"
        self._line(f"cowfuzz: CRASH {record.signature} after {stats.runs:,} runs: "
                   f"{outcome.trace.verdict} -> {record.folder}{extra}", self.out)

    def minimized(self, sig: str, folder, before: dict, after: dict) -> None:
        def size(d):
            return f"{d['operations']} ops/{d['threads']} threads/{d['preemptions']} preemptions"
        self._line(f"cowfuzz: minimized {sig}: {size(before)} -> {size(after)} "
                   f"-> {folder}/repro.cow", self.out)

    def done(self, stats) -> None:
        self._line(f"cowfuzz: DONE {status_text(stats)}", self.out)
