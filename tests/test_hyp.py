"""The public Hypothesis strategies and the stateful mode, as a user would use them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test

from fuzz.program.replay_token import parse_token
from fuzz.hyp import KernelMachine, ProgramFailed, check, programs, schedules
from model.kernel import Kernel
from model.variants import load_design

PLANTED = load_design(f"{Path(__file__).with_name('planted.py')}:GupFastNoSeqcount")
SEQUENTIAL = load_design(f"{Path(__file__).with_name('planted.py')}:RoPinNoUnshare")
QUICK = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(programs(max_threads=2))
def test_upstream_is_clean_on_drawn_programs(program):
    check(program, Kernel)


@QUICK
@given(schedules())
def test_schedules_end_with_a_preemption(schedule):
    assert not schedule or schedule[-1] != 0
    assert all(c >= 0 for c in schedule)


def test_check_reports_trace_and_token():
    from fuzz.program.textcodec import parse_program
    failing = parse_program("cowfuzz 1\nmap 0 1 anon rw populate=write\nthread 0\n  fork 1\n"
                            "thread 0\n  pin 0 0 ro fast longterm\nschedule 0 0 0 0 0 0 0 1\n")
    with pytest.raises(ProgramFailed) as info:
        check(failing, PLANTED, "planted")
    text = str(info.value)
    assert text.startswith("VM_BUG_ON: pinned anon page")
    assert "cowfuzz1:" in text and "gup_fast_pte_range:try_grab_folio_fast" in text


class SequentialMachine(KernelMachine):
    variant = SEQUENTIAL


class UpstreamMachine(KernelMachine):
    variant = Kernel


@pytest.mark.slow
def test_stateful_mode_finds_and_shrinks_a_sequential_bug():
    with pytest.raises(ProgramFailed) as info:
        run_state_machine_as_test(SequentialMachine, settings=settings(
            max_examples=300, stateful_step_count=12, deadline=None, database=None,
            derandomize=True, report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck)))
    message = str(info.value)
    assert message.startswith("VM_BUG_ON: follow_page_pte: FOLL_PIN of") or \
        message.startswith("VM_BUG_ON: pinned anon page")
    # shrunk to a handful of rules, among them the two the bug needs: fork, then a R/O pin
    program, _, _ = parse_token(message.splitlines()[1])
    names = [op.name for t in program.threads for op in t.ops]
    assert {"fork", "pin"} <= set(names) and len(names) <= 6


def test_stateful_mode_is_clean_on_upstream():
    run_state_machine_as_test(UpstreamMachine, settings=settings(
        max_examples=25, stateful_step_count=12, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck)))
