"""Random: random programs, and a random walk over their schedules."""

from __future__ import annotations

from fuzz.program.generate import random_program
from fuzz.runtime.choosers import RandomChooser


class RandomWalk:
    def __init__(self, session, options: dict):
        self.session = session
        self.switch = options.get("switch", 0.3)

    def run_slice(self, rng) -> None:
        session = self.session
        while not session.done():
            program = random_program(rng, max_threads=3, max_ops=6, schedule_len=0)
            session.execute(program, RandomChooser(rng, switch=self.switch,
                                                   fail=0.05 if program.fault_injection else 0))

    def close(self) -> None:
        pass
