"""Every execution of the trace fixture (tests/trace_fixture.py) shows exactly what it
showed when the fixture was written: the same trace text, JSON, schedule, verdict,
signature, report and features, on upstream and on two buggy designs."""

import difflib

import pytest

from tests.trace_fixture import DESIGNS, SEEDS, load, record

FIXTURE = load()


@pytest.mark.slow
@pytest.mark.parametrize("design", DESIGNS)
def test_traces_match_the_fixture(design):
    expected = FIXTURE["designs"][design]
    assert len(expected) == len(SEEDS)
    for seed in SEEDS:
        got, text = record(design, seed)
        if got != expected[seed]:
            full = FIXTURE["texts"].get(f"{design}/{seed}")
            diff = "" if full is None else "\n".join(difflib.unified_diff(
                full.splitlines(), text.splitlines(), "fixture", "now", lineterm="", n=2))
            pytest.fail(f"{design} seed {seed}: {expected[seed]} != {got}\n{diff}\n"
                        "(a change of the model that is meant to change traces rewrites "
                        "the fixture: python -m tests.trace_fixture)")
