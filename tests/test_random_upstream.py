"""Random programs under random schedules on upstream: no finding, no model error.

Upstream is the kernel the oracles are calibrated on: anything they report
here is either a model bug or a kernel bug, and must be looked at.
"""

import random

import pytest

from fuzz.runtime.executor import execute
from fuzz.program.generate import random_program
from fuzz.program.program import Program
from model.kernel import Kernel


def _batch(first, count, **kw):
    failures = []
    for seed in range(first, first + count):
        p = random_program(random.Random(seed), **kw)
        outcome = execute(p, Kernel)
        if outcome.verdict != "ok":
            failures.append((seed, outcome.verdict, outcome.error or str(outcome.violation)))
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("first", range(0, 2000, 500))
def test_random_programs_are_clean_on_upstream(first):
    assert _batch(first, 500, max_threads=4, max_ops=10, schedule_len=100, preempt=0.4) == []


def test_random_programs_with_fault_injection_are_clean():
    failures = []
    for seed in range(10_000, 10_500):
        p = random_program(random.Random(seed), max_threads=3, max_ops=10, schedule_len=100)
        p = Program(p.mappings, p.threads, p.schedule, True)
        outcome = execute(p, Kernel)
        if outcome.verdict != "ok":
            failures.append((seed, outcome.error or str(outcome.violation)))
    assert failures == []
