"""PCT: random programs under probabilistic concurrency testing (Burckhardt et al.,
ASPLOS'10): random task priorities and d-1 priority change points; finds a bug of
depth d with probability at least 1/(n k^(d-1)) per run."""

from __future__ import annotations

from fuzz.runtime.choosers import PCTChooser
from fuzz.program.generate import random_program


def run_slice(session, rng, options) -> None:
    depth = options.get("depth", 3)
    while not session.done():
        program = random_program(rng, max_threads=3, max_ops=6, schedule_len=0)
        k = max(int(session.decisions_avg * 1.2), 10)
        session.execute(program, PCTChooser(rng, depth=depth, k=k, fail=0))
