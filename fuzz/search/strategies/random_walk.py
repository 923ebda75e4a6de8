"""Random: random programs, and a random walk over their schedules."""

from __future__ import annotations

from fuzz.runtime.choosers import RandomChooser
from fuzz.program.generate import random_program


def run_slice(session, rng, options) -> None:
    switch = options.get("switch", 0.3)
    while not session.done():
        program = random_program(rng, max_threads=3, max_ops=6, schedule_len=0)
        session.execute(program, RandomChooser(rng, switch=switch,
                                               fail=0.05 if program.fault_injection else 0))
