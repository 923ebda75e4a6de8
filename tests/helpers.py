"""Shared helpers for the tests: run a program, read operation results off the trace."""

from __future__ import annotations

from fuzz.program.program import Mapping, Op, Program, ThreadSpec
from fuzz.program.textcodec import parse_program
from fuzz.runtime.executor import execute
from model.kernel import Kernel


def op(name, *args) -> Op:
    return Op(name, tuple(args))


def prog(mappings, *threads, schedule=(), faults=False) -> Program:
    """prog([Mapping...], (pid, [ops]), ...)"""
    return Program(tuple(mappings), tuple(ThreadSpec(pid, tuple(ops)) for pid, ops in threads),
                   tuple(schedule), faults)


def anon(va=0, n=1, populate="write", prot="rw") -> Mapping:
    return Mapping(va, n, "anon", prot, populate=populate)


def results(outcome) -> dict[str, list]:
    """Operation results per process ("P0", "P1", ...), in order; values are tokens."""
    out: dict[str, list] = {}
    for s in outcome.trace.steps:
        name = outcome.trace.task_names[s.tid]
        for e in s.events:
            if e[0] == "ret":
                out.setdefault(name.split(".")[0], []).append(e[3] if len(e) > 3 else e[2])
    return out


def run(program, variant=Kernel, **kw):
    return execute(program, variant, **kw)


def program(body: str, maps: str = "map 0 1 anon rw populate=write\n", header: str = ""):
    """A program from its .cow text after the first line: ``header`` lines, ``maps``, ``body``."""
    return parse_program("cowfuzz 1\n" + header + maps + body)


def changes(outcome, label: str) -> list[str]:
    """The changes of every step at ``label``, as "object.field old->new"."""
    trace = outcome.trace
    return [f"{o}.{f} {a}->{b}" for s in trace.steps if s.label == label
            for o, f, a, b in trace.changes_of(s)]


def labels(outcome) -> list[str]:
    return [s.label for s in outcome.trace.steps]


#: guided without its random share and its focus on met pairs
#: (fuzz/search/strategies/guided.py): the tests of one mechanism of the engine compare it
#: with and without that mechanism alone
BARE = {"random": 0, "focus": 0}
