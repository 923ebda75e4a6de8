"""The text crash report on a known reproducer: header, conflicting pair, lane log,
verdict, and a "because" list that names the conflicting steps."""

from __future__ import annotations

import re
from pathlib import Path

from fuzz.runtime.executor import execute
from fuzz.triage.report import build_report, render_text
from fuzz.program.textcodec import read_program
from fuzz.program.replay_token import parse_token
from model.variants import get_variant

ROOT = Path(__file__).resolve().parents[1]
RACE = ROOT / "corpus/cowpte-rfc2/gup-fast-marks-shared-table.cow"


def report_of(path: Path, variant: str, **kw):
    program = read_program(path)
    outcome = execute(program, get_variant(variant))
    return program, outcome, build_report(program, variant, outcome, **kw)


def test_text_report_structure():
    program, outcome, report = report_of(RACE, "cowpte-rfc2", meta={
        "first_hit": {"execution": 4240, "seconds": 12.3, "strategy": "coverage", "seed": 1},
        "hits": 3, "size_before": {"operations": 11, "threads": 4, "preemptions": 10},
        "size_after": {"operations": 2, "threads": 2, "preemptions": 2}})
    text = render_text(report)
    lines = text.splitlines()
    # header, in the form of a kernel report
    c = report.conflict
    assert lines[0] == (f"BUG: cowfuzz: VM_BUG_ON in {c['first_label']} / {c['second_label']}")
    header = dict(re.match(r"(\w[\w ]*):\s+(.*)", line).groups() for line in lines[2:10])
    assert header["variant"] == "cowpte-rfc2"
    assert header["signature"] == report.signature
    assert header["first hit"] == "execution 4,240 after 12.3 s (coverage, seed 1)"
    assert header["hits"] == "3"
    assert header["size"] == "11 ops/4 threads/10 preemptions -> 2 ops/2 threads/2 preemptions"
    assert parse_token(header["token"])[0] == program
    # the conflicting pair, KCSAN style, on the object the oracle names
    i = lines.index(f"Conflicting accesses to {c['object']}:")
    assert lines[i + 1].startswith(f"  access by {c['second_task']} at step {c['second']}, ")
    assert lines[i + 2].startswith(f"  previous access by {c['first_task']} at step "
                                   f"{c['first']}, ")
    assert "t1.cow_pte_owner (1, 0) -> EXCLUSIVE" in lines[i + 1]
    # the lane log: one line per step, '>' on exactly the two conflicting steps
    j = lines.index("Lane log:")
    k = lines.index("Verdict: " + outcome.trace.verdict)
    steps = [line for line in lines[j + 2:k] if re.match(r"^ [ >] +\d+ ", line)]
    assert len(steps) == len(outcome.trace.steps)
    marked = [int(line.split()[1]) for line in steps if line.startswith(" >")]
    assert marked == sorted({c["first"], c["second"]})
    assert any(line.strip().startswith("STATE t1 ") and "cow_pte_owner=EXCLUSIVE" in line
               for line in lines[j:k])
    # the verdict: oracle, objects, final state, and the because list
    assert lines[k + 1] == "  objects: mm=1 va=0 table=t1"
    assert lines[k + 2].startswith("  final state of t1: ") and "refcount=2" in lines[k + 2]
    because = lines[lines.index("  because:") + 1:]
    assert any(f"step {c['first']}: " in b and "(conflicting access A)" in b for b in because)
    assert any(f"step {c['second']}: " in b and "(conflicting access B)" in b for b in because)
    assert because[-1].strip().startswith(f"{len(because)}. then VM_BUG_ON: pmd_clear_bad")


def test_column_layout_for_three_tasks_or_fewer():
    path = ROOT / "corpus/cowpte-v4/recover-uninitialised-ptl.cow"
    _, outcome, report = report_of(path, "cowpte-v4")
    assert len(report.tasks) <= 3
    text = render_text(report)
    lane = text.split("Lane log:\n")[1].splitlines()
    assert lane[0].split() == ["step", *report.tasks]
    # each step's label sits in its own task's column
    col = {t: lane[0].index(t) for t in report.tasks}
    for line, step in zip([x for x in lane[1:] if re.match(r"^ [ >] +\d+ ", x)], report.steps):
        assert line[col[step.task]:].startswith(step.label[:20])
