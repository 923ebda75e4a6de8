"""The guided engine's choice table of raced pairs (fuzz/search/guided/pairs.py): what
counts as two operations meeting, and how the table draws from what it saw."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from fuzz.bench.depth import executions_to_find
from fuzz.program.generate import RACED_PAIRS, pair_program, raced_ops
from fuzz.program.ops import OPERATIONS
from fuzz.runtime.executor import execute
from fuzz.search.guided.pairs import UNIFORM, PairTable
from fuzz.search.guided.probe import Probe
from model.kernel import Kernel
from tests.helpers import BARE


def _pair(a: str, b: str):
    return OPERATIONS[a], OPERATIONS[b]


def _met(a: str, b: str, seeds=range(40)) -> int:
    """In how many of ``seeds`` pair programs racing a and b the two operations met."""
    table = PairTable()
    for seed in seeds:
        rng = random.Random(seed)
        program = pair_program(rng, pair=_pair(a, b))
        probe = Probe((), seed, switch=0.5)
        execute(program, Kernel, probe)
        table.record_run(program, probe)
    k = table.index[(a, b)]
    assert table.tried[k] == len(seeds)
    return table.met[k]


def test_two_zaps_of_one_page_meet_and_an_exit_never_meets_a_madvise():
    """Both MADV_DONTNEEDs clear the same PTE: they meet under most schedules. exit_group()
    and MADV_DOFORK on the page write nothing in common: they never do."""
    assert _met("dontneed", "dontneed") >= 20
    assert _met("exit", "dofork") == 0


def test_the_raced_operations_are_found_behind_the_setup_and_the_wait():
    rng = random.Random(4)
    seen = Counter()
    for _ in range(300):
        pair = RACED_PAIRS[rng.randrange(len(RACED_PAIRS))]
        program = pair_program(rng, pair=pair)
        i, j = raced_ops(program)
        assert (program.threads[0].ops[i].name, program.threads[1].ops[j].name) == \
            (pair[0].name, pair[1].name)
        seen[i > 0] += 1
    assert seen[True] and seen[False]          # with and without a forking setup


def test_the_table_draws_pairs_that_meet_more_often_and_keeps_a_uniform_share():
    table = PairTable()
    meets, misses = ("dontneed", "dontneed"), ("exit", "dofork")
    for _ in range(50):
        table.record(meets, True)
        table.record(misses, False)
    rng = random.Random(1)
    drawn = Counter((a.name, b.name) for a, b in (table.draw(rng) for _ in range(40_000)))
    uniform = 40_000 * UNIFORM / len(RACED_PAIRS)
    assert drawn[meets] > 5 * drawn[misses]
    assert drawn[misses] > uniform / 2          # the uniform share still reaches it
    untried = drawn[("fork", "pin")]            # an untried pair: drawn as if it met half
    assert drawn[misses] < untried < drawn[meets]


@pytest.mark.slow
def test_the_table_lets_guided_find_a_race_it_misses_drawing_pairs_uniformly():
    """misplaced-unlock-page needs a write fault and a zap of one page, two operations
    that meet under most schedules; a pair that never meets takes a share of the draws
    only. Deterministic for the seed; drawing pairs uniformly, the same budget finds
    nothing."""
    found, _ = executions_to_find("misplaced-unlock-page", "guided", 4, 15_000, BARE)
    missed, _ = executions_to_find("misplaced-unlock-page", "guided", 4, 15_000,
                                   {**BARE, "pairs": 0})
    assert found is not None and missed is None
