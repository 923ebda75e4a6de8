"""The sharper oracles (model/oracles/sharp.py) make deep bugs shallow: each catches a
broken design with fewer preemptions than the oracles before it, and stays quiet on
upstream. Preemption counts are the first level of an exhaustive search (explore) that
fails; each oracle can be switched off by its class attribute."""

from __future__ import annotations

import pytest

from fuzz.program.textcodec import parse_program
from fuzz.runtime.executor import execute
from fuzz.triage.explore import exploration
from model.kernel import Kernel
from tests import designs

OFF = {"lost_write_invariant": False, "tlb_promise_oracle": False, "fork_window_oracle": False}


def program(body: str, maps: str = "map 0 1 anon rw populate=write\n", header: str = ""):
    return parse_program("cowfuzz 1\n" + header + maps + body)


def without(design, *oracles):
    """``design`` with the named sharper oracles switched off."""
    return type(design.__name__ + "Without", (design,),
                {"name": design.name + "-without", **{o: OFF[o] for o in oracles}})


def preemptions(prog, design, bound):
    """(fewest preemptions of a failing schedule, its oracle), or (None, None) when no
    schedule with at most ``bound`` preemptions fails."""
    for level, outcome in exploration(prog, bound, lambda p, c: execute(p, design, c)):
        if outcome.failed:
            return level, outcome.status
    return None, None


# -- lost writes as a state invariant ------------------------------------------------------------
SWAPIN = program("thread 0\n  read 0\nthread 0\n  read 0\n", "map 0 1 anon rw populate=swap\n")
#: reclaim unmaps (TLB flush deferred), MADV_DONTNEED returns without flushing it, and a
#: third thread stores through its stale translation; nobody loads afterwards
STRAY_STORE = program("thread 0\n  reclaim 0\nthread 0\n  dontneed 0 1\nthread 0\n  write 0\n"
                      "  write 0\n")


def test_a_swapin_that_unlocks_early_is_caught_without_a_preemption():
    design = designs.SwapReadUnlocksEarly
    assert preemptions(SWAPIN, design, 2) == (0, "lost-write")
    assert preemptions(SWAPIN, without(design, "lost_write_invariant"), 2) == (1, "lost-write")


@pytest.mark.slow
def test_a_store_nobody_loads_again_is_caught():
    design = without(designs.NoBatchedFlushPending, "tlb_promise_oracle")
    assert preemptions(STRAY_STORE, design, 3) == (3, "lost-write")
    assert preemptions(STRAY_STORE, without(design, "lost_write_invariant"), 3) == (None, None)


# -- the narrower TLB excuse ---------------------------------------------------------------------------
STALE_AFTER_DONTNEED = program("thread 0\n  reclaim 0\nthread 0\n  dontneed 0 1\nthread 0\n"
                               "  write 0\n  write 0\n  read 0\n")


def test_madv_dontneed_returning_with_a_stale_writable_entry_is_caught_at_once():
    design = designs.NoBatchedFlushPending
    level, oracle = preemptions(STALE_AFTER_DONTNEED, design, 3)
    assert (level, oracle) == (1, "writable-shared")
    before = without(design, "tlb_promise_oracle", "lost_write_invariant")
    assert preemptions(STALE_AFTER_DONTNEED, before, 3) == (3, "lost-write")


# -- the fork window ------------------------------------------------------------------------------------
#: a sibling write-faults while fork copies; another sibling keeps a writable translation;
#: the child reads
FORK_VS_FAULT = program("thread 0\n  fork 1\nthread 0\n  write 0\nthread 0\n  read 0\n  write 0\n"
                        "thread 1\n  read 0\n")


@pytest.mark.slow
def test_a_fault_inside_forks_window_is_caught_at_once():
    design = designs.VmaReadIgnoresWriteLock
    assert preemptions(FORK_VS_FAULT, design, 2) == (1, "fork-window")
    assert preemptions(FORK_VS_FAULT, without(design, "fork_window_oracle"), 2) == (None, None)


@pytest.mark.slow
def test_a_fault_inside_forks_window_needs_four_preemptions_without_it():
    design = without(designs.VmaReadIgnoresWriteLock, "fork_window_oracle")
    assert preemptions(FORK_VS_FAULT, design, 4) == (4, "lost-write")


# -- quiet on upstream ---------------------------------------------------------------------------------
@pytest.mark.parametrize("prog, bound", [(SWAPIN, 3), (STRAY_STORE, 3), (STALE_AFTER_DONTNEED, 3),
                                         (FORK_VS_FAULT, 2)],
                         ids=["swapin", "stray-store", "stale-after-dontneed", "fork-vs-fault"])
@pytest.mark.slow
def test_upstream_is_clean_on_the_same_programs(prog, bound):
    assert preemptions(prog, Kernel, bound) == (None, None)
