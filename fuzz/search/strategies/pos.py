"""POS: random programs under partial order sampling (Yuan et al., CAV'18): random
task priorities, re-drawn for the tasks whose next steps race with the step that
ran (fuzz/runtime/choosers.py:POSChooser)."""

from __future__ import annotations

from fuzz.program.generate import random_program
from fuzz.runtime.choosers import POSChooser


class Pos:
    def __init__(self, session, options: dict):
        self.session = session

    def run_slice(self, rng) -> None:
        session = self.session
        while not session.done():
            program = random_program(rng, max_threads=3, max_ops=6, schedule_len=0)
            session.execute(program, POSChooser(rng, fail=0.05 if program.fault_injection else 0))

    def close(self) -> None:
        pass
