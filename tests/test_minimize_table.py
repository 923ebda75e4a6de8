"""The minimizer's passes against plain predicates, as syzkaller tests its Minimize:
program text in, a predicate, the minimized text out. No execution: the predicate
looks at the program only."""

from __future__ import annotations

import pytest

from fuzz.program.textcodec import format_program, parse_program
from fuzz.triage.minimize import shrink

#: a program with a bit of everything: two mappings, three threads of process 0 (one
#: empty), a forked child's thread, a schedule with preemptions
PROGRAM = """cowfuzz 1
map 0 2 anon rw populate=write
map 4 2 file r populate=read
thread 0
  read 1
  fork 1
  write 0
thread 0
  pin 2 1 rw fast short
  unpin 2
thread 1
  write 1
  read 0
thread 0
schedule 0 1 0 2
"""


def ops(p):
    return [(t.pid, o) for t in p.threads for o in t.ops]


def has_op(name):
    return lambda p: any(o.name == name for _pid, o in ops(p))


def has_thread_of(pid):
    return lambda p: any(t.pid == pid for t in p.threads)


def both(*predicates):
    return lambda p: all(f(p) for f in predicates)


def writers(p) -> int:
    return sum(1 for t in p.threads if any(o.name == "write" for o in t.ops))


TABLE = [
    # an op named pin and a thread of process 1: the pin's arguments simplified, the
    # child's thread kept (empty), everything else gone
    ("pin and a thread of pid 1", both(has_op("pin"), has_thread_of(1)), """cowfuzz 1
thread 0
  pin 0 0 ro fast longterm
thread 1
"""),
    # a fork, and the child writing va 1: both kept, in their own threads
    ("fork, child writes va 1",
     lambda p: has_op("fork")(p) and any(pid == 1 and o.name == "write" and o.args == (1,)
                                         for pid, o in ops(p)), """cowfuzz 1
thread 0
  fork 1
thread 1
  write 1
"""),
    # two threads that write, one preemption: the schedule shrinks to a single choice
    ("two writers and a preemption", lambda p: writers(p) >= 2 and p.preemptions() >= 1,
     """cowfuzz 1
thread 0
  write 0
thread 1
  write 0
schedule 1
"""),
    # a populated file mapping: one page of it, the other mapping and every thread gone
    ("a populated file mapping",
     lambda p: any(m.kind == "file" and m.populate != "none" for m in p.mappings), """cowfuzz 1
map 4 1 file r populate=read
"""),
    # the empty thread goes with the rest
    ("a fork", has_op("fork"), """cowfuzz 1
thread 0
  fork 1
"""),
    # the predicate answers with its canonical form (here: without the schedule), and
    # the minimizer goes on from that
    ("canonical answer", lambda p: p.with_schedule(()) if has_op("unpin")(p) else None,
     """cowfuzz 1
thread 0
  unpin 0
"""),
]


@pytest.mark.parametrize("name, predicate, expected", TABLE, ids=[row[0] for row in TABLE])
def test_minimize_table(name, predicate, expected):
    result = shrink(parse_program(PROGRAM), predicate)
    assert format_program(result.program) == expected
    # deterministic, and a fixed point
    assert shrink(parse_program(PROGRAM), predicate).program == result.program
    assert shrink(result.program, predicate).program == result.program


def test_empty_threads_are_dropped_when_the_predicate_allows():
    source = """cowfuzz 1
thread 0
thread 0
  fork 1
thread 1
thread 0
"""
    result = shrink(parse_program(source), has_op("fork"))
    assert format_program(result.program) == "cowfuzz 1\nthread 0\n  fork 1\n"
    assert result.before["threads"] == 4 and result.after["threads"] == 1


def test_each_candidate_is_asked_once_whatever_the_answer():
    asked = []

    def predicate(p):
        asked.append(format_program(p))
        return has_op("pin")(p)
    result = shrink(parse_program(PROGRAM), predicate)
    assert len(asked) == len(set(asked)) == result.runs
    assert sum(1 for a in asked if "pin" in a) < len(asked)     # both answers occurred


def test_an_uninteresting_program_is_refused():
    with pytest.raises(ValueError, match="not interesting"):
        shrink(parse_program(PROGRAM), has_op("vmsplice"))


def test_expect_and_found_on_lines_are_kept():
    source = PROGRAM.replace("cowfuzz 1\n", "cowfuzz 1\nfound-on upstream\n"
                             "expect upstream clean\n")
    result = shrink(parse_program(source), has_op("fork"))
    assert format_program(result.program) == ("cowfuzz 1\nfound-on upstream\n"
                                              "expect upstream clean\nthread 0\n  fork 1\n")
