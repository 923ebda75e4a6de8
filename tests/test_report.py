"""The text crash report on a known reproducer: header, conflicting pair, lane log,
verdict, and a "because" list that names the conflicting steps."""

from __future__ import annotations

import re
from pathlib import Path

from fuzz.runtime.executor import execute
from fuzz.runtime.trace import vm_flags_text
from fuzz.triage.report import build_report, render_text, render_trace
from fuzz.program.textcodec import parse_program, read_program
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
    assert header["size"] == ("11 operations, 4 threads, 10 preemptions -> "
                              "2 operations, 2 threads, 2 preemptions")
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


def test_one_trace_format_and_nothing_cut_short():
    """The report's lane log (trace.txt), the plain trace and ``render_trace`` (cowfuzz run on
    a clean run) print a step the same way, whatever the number of tasks, every change in
    full."""
    path = ROOT / "corpus/cowpte-v4/recover-uninitialised-ptl.cow"
    program, outcome, report = report_of(path, "cowpte-v4")
    assert len(report.tasks) <= 3
    lanes = render_text(report).split("Lane log:\n")[1].split("\n\nVerdict: ")[0].splitlines()
    assert lanes == render_trace(report).splitlines()[:-1]
    plain = outcome.trace.render_text().splitlines()
    assert lanes[0] == plain[0] and len(lanes) >= len(plain) - 1
    for step in report.steps:
        line = next(x for x in lanes if re.match(rf"^ [ >] +{step.index} ", x))
        assert f"  {step.label}" in line
        for obj, field, before, after in step.changes:
            assert f"{obj}.{field} {before}->{after}" in line
    # a step the report does not mark or annotate reads the same in the plain trace
    quiet = [s for s in report.steps if not s.mark and not s.state and
             s.objects == outcome.trace.step_objects(outcome.trace.steps[s.index])]
    assert quiet
    for s in quiet:
        mine = next(x for x in lanes if re.match(rf"^ [ >] +{s.index} ", x))
        assert mine in plain
    assert render_trace(report).splitlines()[-1] == plain[-1] == \
        f"Verdict: {outcome.trace.verdict}"


def test_vm_flags_print_by_name():
    program = parse_program("cowfuzz 1\nmap 0 2 anon rw populate=write\nthread 0\n"
                            "  mprotect 0 1 r\n")
    text = execute(program, get_variant("upstream")).trace.render_text()
    assert "mm1.vma[0-2] -->VM_READ|VM_WRITE|VM_MAYREAD|VM_MAYWRITE|VM_SOFTDIRTY" in text
    assert ("mm1.vma[0].vm_flags VM_READ|VM_WRITE|VM_MAYREAD|VM_MAYWRITE|VM_SOFTDIRTY->"
            "VM_READ|VM_MAYREAD|VM_MAYWRITE|VM_SOFTDIRTY") in text
    assert not re.search(r"vm_flags \d", text)
    assert vm_flags_text(0) == "0" and vm_flags_text(1 << 40) == hex(1 << 40)
