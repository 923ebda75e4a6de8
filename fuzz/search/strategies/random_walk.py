"""Random: random programs, and a random walk over their schedules."""

from __future__ import annotations

from fuzz.program.generate import random_program
from fuzz.runtime.choosers import RandomChooser


#: operations per thread of a random program (``random_program``'s ``max_ops``)
MAX_OPS = 6
#: the walk's probability of switching task at a decision
SWITCH = 0.3


def random_execution(session, rng, switch: float = SWITCH, *, feedback: bool = True):
    """One execution of the random strategy: a fresh random program, a random walk."""
    program = random_program(rng, max_threads=3, max_ops=MAX_OPS, schedule_len=0)
    return session.execute(program, RandomChooser(rng, switch=switch,
                                                  fail=0.05 if program.fault_injection else 0),
                           feedback=feedback)


class RandomWalk:
    def __init__(self, session, options: dict):
        self.session = session
        self.switch = options.get("switch", SWITCH)

    def run_slice(self, rng) -> None:
        session = self.session
        while not session.done():
            random_execution(session, rng, self.switch)

    def close(self) -> None:
        pass
