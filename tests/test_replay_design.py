"""Which design an input replays on (fuzz/program/replay_design.py), and the other small
helpers every command shares: one rule, one spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.program.replay_design import replay_design, replay_designs
from fuzz.program.textcodec import parse_program, read_program
from fuzz.runtime.executor import execute
from fuzz.triage.minimize import shrink_text, size_text
from model.variants import get_variant

ROOT = Path(__file__).resolve().parents[1]
BODY = "map 0 1 anon rw populate=write\nthread 0\n  fork 1\n  write 0\n"


def program(*header: str):
    return parse_program("cowfuzz 1\n" + "".join(f"{h}\n" for h in header) + BODY)


RULES = [
    # (header lines, --variant, token's variant, one design, every expectation)
    ((), None, None, "upstream", ["upstream"]),
    (("expect dirty-cow clean",), None, None, "dirty-cow", ["dirty-cow"]),
    (("expect dirty-cow clean", "expect upstream clean"), None, None, "dirty-cow",
     ["dirty-cow", "upstream"]),
    (("found-on cowpte-v4", "expect upstream clean", "expect dirty-cow clean"), None, None,
     "cowpte-v4", ["upstream", "dirty-cow"]),
    (("found-on cowpte-v4", "expect upstream clean"), None, "cowpte-rfc2", "cowpte-rfc2",
     ["cowpte-rfc2"]),
    (("found-on cowpte-v4", "expect upstream clean"), "reuse-mapcount", "cowpte-rfc2",
     "reuse-mapcount", ["reuse-mapcount"]),
]


@pytest.mark.parametrize("header, given, token, one, every", RULES)
def test_one_rule_in_one_order(header, given, token, one, every):
    p = program(*header)
    assert replay_design(p, given, token) == one
    assert replay_designs(p, given, token) == [one]
    assert replay_designs(p, given, token, every_expected=True) == every


def test_outcome_status_is_what_expect_lines_record():
    clean = execute(program(), get_variant("upstream"))
    assert clean.status == "clean"
    bug = execute(read_program(ROOT / "corpus/reuse-mapcount/vmsplice-unmap-in-child.cow"),
                  get_variant("reuse-mapcount"))
    assert bug.failed and bug.status == bug.oracle == "writable-shared"


def test_size_text_spells_sizes_one_way():
    assert size_text({"operations": 1, "threads": 2, "preemptions": 0}) == \
        "1 operation, 2 threads, 0 preemptions"
    assert shrink_text({"operations": 14, "threads": 4, "preemptions": 4},
                       {"operations": 2, "threads": 2, "preemptions": 1}) == \
        "14 operations, 4 threads, 4 preemptions -> 2 operations, 2 threads, 1 preemption"
