"""Line coverage of the model, measured on corpus entries only.

Tracing every execution would cost about 3x (coverage.py's C tracer), so a
worker traces only the programs that joined its corpus, within a time
budget per slice; entries it had no time for wait for the next slice. The
count is the number of distinct ``model/`` source lines the corpus runs,
the same unit whatever the strategy.
"""

from __future__ import annotations

import time
from pathlib import Path

import coverage

import model

MODEL_DIR = Path(model.__file__).resolve().parent


class LineCoverage:
    def __init__(self):
        self._cov = coverage.Coverage(data_file=None, include=[f"{MODEL_DIR}/*"],
                                      config_file=False)
        self.pending: list = []            # programs not traced yet
        self.lines: set[str] = set()       # "file.py:N"
        self.reported: set[str] = set()    # lines already sent to the coordinator

    def add(self, program) -> None:
        self.pending.append(program)

    def measure(self, run_one, budget: float) -> None:
        """Trace pending programs with ``run_one(program)`` for at most ``budget`` s."""
        if not self.pending or budget <= 0:
            return
        deadline = time.monotonic() + budget
        done = 0
        self._cov.start()
        try:
            for program in self.pending:
                run_one(program)
                done += 1
                if time.monotonic() >= deadline:
                    break
        finally:
            self._cov.stop()
        del self.pending[:done]
        data = self._cov.get_data()
        for path in data.measured_files():
            name = Path(path).resolve().relative_to(MODEL_DIR).as_posix()
            self.lines.update(f"{name}:{n}" for n in data.lines(path) or ())

    def new_lines(self) -> list[str]:
        """Lines measured since the last call (what the coordinator has not seen)."""
        new = sorted(self.lines - self.reported)
        self.reported.update(new)
        return new
