"""PCT: random programs under probabilistic concurrency testing (Burckhardt et al.,
ASPLOS'10): random task priorities and d-1 priority change points; finds a bug of
depth d with probability at least 1/(n k^(d-1)) per run."""

from __future__ import annotations

from fuzz.program.generate import random_program
from fuzz.runtime.choosers import PCTChooser


class Pct:
    def __init__(self, session, options: dict):
        self.session = session
        self.depth = options.get("depth", 3)

    def run_slice(self, rng) -> None:
        session = self.session
        while not session.done():
            program = random_program(rng, max_threads=3, max_ops=6, schedule_len=0)
            k = max(int(session.decisions_avg * 1.2), 10)
            session.execute(program, PCTChooser(rng, depth=self.depth, k=k, fail=0))

    def close(self) -> None:
        pass
