"""SURW: random programs under a selectively uniform random walk (ASPLOS'25): a task
runs with probability proportional to the state-changing steps it has left,
estimated from its remaining operations by what they took in earlier executions
(fuzz/runtime/urw.py). The estimates live on the strategy, for the worker's life."""

from __future__ import annotations

from fuzz.program.generate import random_program
from fuzz.runtime.urw import EventCounts, URWChooser


class Surw:
    def __init__(self, session, options: dict):
        self.session = session
        self.counts = EventCounts()

    def run_slice(self, rng) -> None:
        session = self.session
        while not session.done():
            program = random_program(rng, max_threads=3, max_ops=6, schedule_len=0)
            session.execute(program, URWChooser(rng, program, self.counts,
                                                fail=0.05 if program.fault_injection else 0))

    def close(self) -> None:
        pass
