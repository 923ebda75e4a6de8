"""cow.c conformance: every base-page case passes on upstream.

Each scenario (tests/cowc.py) must end with no oracle firing, and the
two results cow.c compares must be equal ("No leak from parent into
child", "Longterm R/O pin is reliable", ...).
"""

import pytest

from tests.cowc import cowc_scenarios
from tests.helpers import results, run

SCENARIOS = cowc_scenarios()


@pytest.mark.parametrize("sc", SCENARIOS, ids=[f"{s.name} [{s.backing}]" for s in SCENARIOS])
def test_cowc_case_on_upstream(sc):
    outcome = run(sc.program)
    assert outcome.verdict == "ok", outcome.error or str(outcome.violation)
    r = results(outcome)
    a, i, b, j = sc.check
    assert r[a][i] == r[b][j], f"cow.c compares {a}[{i}]={r[a][i]} with {b}[{j}]={r[b][j]}"


def test_all_base_page_cases_are_present():
    names = {(s.name, s.backing) for s in SCENARIOS}
    assert len(names) == 14 * 2 + 3 * 2


def test_swapped_backing_starts_from_a_swap_entry():
    """run_with_base_page_swap: the test body starts with the page swapped out."""
    sc = next(s for s in SCENARIOS if s.backing == "swapped base page")
    trace = run(sc.program).trace
    setup_changes = [c for s in trace.steps if trace.task_names[s.tid] == "setup"
                     for c in trace.changes_of(s)]
    assert any(f.startswith("pte[") and new.startswith("swp") for _, f, _, new in setup_changes)


def test_ro_pin_of_shared_page_unshares_first():
    """Case 9: the R/O pin must take a FAULT_FLAG_UNSHARE fault that copies the page."""
    sc = next(s for s in SCENARIOS if s.name == "R/O GUP pin on R/O-mapped shared page"
              and s.backing == "base page")
    labels = [s.label for s in run(sc.program).trace.steps]
    assert "wp_page_copy:__wp_page_copy_user" in labels
