"""The cow.c conformance scenarios (tools/testing/selftests/mm/cow.c) as Programs.

Each anon case runs on a resident base page and on a swapped-out one
(cow.c's run_with_base_page / run_with_base_page_swap); the non-anon cases
on the shared zero page and on a memfd page-cache page. cow.c's comm pipes
become user events (signal/wait), its wait() becomes waitpid, the gup_test
ioctls become pin/devread/unpin, and io_uring's fixed buffer (cases 7 and
8) a R/W long-term pin taken with pin_user_pages_fast, as io_pin_pages does.

``check`` names what cow.c compares; tests/test_conformance.py evaluates it
on the operation results of the trace (the oracles check the same promise
independently).
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzz.program.program import Mapping, Op, Program, ThreadSpec


def op(name, *args) -> Op:
    return Op(name, tuple(args))


@dataclass(frozen=True)
class Scenario:
    name: str            # cow.c's test name
    backing: str         # base page | swapped base page | zeropage | memfd
    program: Program
    #: (thread, op index, thread, op index): the two results cow.c compares
    check: tuple


# -- anon test cases (cow.c anon_test_cases[], base pages) ----------------------
def _anon(populate: str):
    return (Mapping(0, 1, "anon", "rw", populate=populate),)


def _cow_in_parent(mprotect: bool):
    parent = [op("fork", 1), op("wait", 0)]
    if mprotect:
        parent += [op("mprotect", 0, 1, "r"), op("mprotect", 0, 1, "rw")]
    parent += [op("write", 0), op("signal", 1)]
    child = [op("read", 0), op("signal", 0), op("wait", 1), op("read", 0)]
    return parent, child, ("P1", 0, "P1", 3)   # child: old == new


def _vmsplice_in_child(mprotect: bool):
    parent = [op("fork", 1), op("wait", 0)]
    if mprotect:
        parent += [op("mprotect", 0, 1, "r"), op("mprotect", 0, 1, "rw")]
    parent += [op("write", 0), op("signal", 1)]
    child = [op("read", 0), op("vmsplice", 0), op("munmap", 0, 1), op("signal", 0),
             op("wait", 1), op("piperead")]
    return parent, child, ("P1", 0, "P1", 5)


def _vmsplice_in_parent(before_fork: bool):
    parent = [op("read", 0)]
    if before_fork:
        parent += [op("vmsplice", 0), op("fork", 1)]
    else:
        parent += [op("fork", 1), op("vmsplice", 0)]
    parent += [op("wait", 0), op("munmap", 0, 1), op("signal", 1), op("waitpid", 1),
               op("piperead")]
    child = [op("signal", 0), op("wait", 1), op("write", 0)]
    return parent, child, ("P0", 0, "P0", 7)


def _iouring(use_fork: bool):
    parent = [op("pin", 0, 0, "rw", "fast", "longterm")]
    if use_fork:
        parent += [op("fork", 1), op("write", 0), op("devread", 0), op("signal", 0)]
        child = [op("wait", 0)]
        check = ("P0", 2, "P0", 3)
    else:
        parent += [op("mprotect", 0, 1, "r"), op("clear_refs"), op("mprotect", 0, 1, "rw"),
                   op("write", 0), op("devread", 0)]
        child = None
        check = ("P0", 4, "P0", 5)
    parent += [op("unpin", 0)]
    return parent, child, check


def _ro_pin(kind: str, fast: bool):
    path = "fast" if fast else "slow"
    pin = [op("pin", 0, 0, "ro", path, "longterm"), op("write", 0), op("devread", 0),
           op("unpin", 0)]
    if kind == "shared":
        return [op("fork", 1)] + pin + [op("signal", 0)], [op("wait", 0)], ("P0", 2, "P0", 3)
    if kind == "previously shared":
        return [op("fork", 1), op("waitpid", 1)] + pin, [], ("P0", 3, "P0", 4)
    ro = [op("mprotect", 0, 1, "r"), op("clear_refs"), op("mprotect", 0, 1, "rw")]
    return ro + pin, None, ("P0", 4, "P0", 5)


ANON_CASES = [
    ("Basic COW after fork()", lambda: _cow_in_parent(False)),
    ("Basic COW after fork() with mprotect() optimization", lambda: _cow_in_parent(True)),
    ("vmsplice() + unmap in child", lambda: _vmsplice_in_child(False)),
    ("vmsplice() + unmap in child with mprotect() optimization",
     lambda: _vmsplice_in_child(True)),
    ("vmsplice() before fork(), unmap in parent after fork()",
     lambda: _vmsplice_in_parent(True)),
    ("vmsplice() + unmap in parent after fork()", lambda: _vmsplice_in_parent(False)),
    ("R/O-mapping a page registered as iouring fixed buffer", lambda: _iouring(False)),
    ("fork() with an iouring fixed buffer", lambda: _iouring(True)),
    ("R/O GUP pin on R/O-mapped shared page", lambda: _ro_pin("shared", False)),
    ("R/O GUP-fast pin on R/O-mapped shared page", lambda: _ro_pin("shared", True)),
    ("R/O GUP pin on R/O-mapped previously-shared page",
     lambda: _ro_pin("previously shared", False)),
    ("R/O GUP-fast pin on R/O-mapped previously-shared page",
     lambda: _ro_pin("previously shared", True)),
    ("R/O GUP pin on R/O-mapped exclusive page", lambda: _ro_pin("exclusive", False)),
    ("R/O GUP-fast pin on R/O-mapped exclusive page", lambda: _ro_pin("exclusive", True)),
]


def _threads(parent, child):
    threads = [ThreadSpec(0, tuple(parent))]
    if child is not None:
        threads.append(ThreadSpec(1, tuple(child)))
    return tuple(threads)


# -- non-anon test cases (cow.c non_anon_test_cases[]) -------------------------
def _non_anon_mappings(backing: str):
    if backing == "zeropage":
        return (Mapping(0, 1, "anon", "rw", populate="read"),
                Mapping(4, 1, "anon", "r", populate="read"))
    return (Mapping(0, 1, "file", "rw", populate="read"),
            Mapping(4, 1, "shared", "r", populate="read"))


NON_ANON_CASES = [
    ("Basic COW", lambda: ([op("read", 4), op("write", 0), op("read", 4)], ("P0", 0, "P0", 2))),
    ("R/O longterm GUP pin",
     lambda: ([op("pin", 0, 0, "ro", "slow", "longterm"), op("write", 0), op("devread", 0),
               op("unpin", 0)], ("P0", 1, "P0", 2))),
    ("R/O longterm GUP-fast pin",
     lambda: ([op("pin", 0, 0, "ro", "fast", "longterm"), op("write", 0), op("devread", 0),
               op("unpin", 0)], ("P0", 1, "P0", 2))),
]


def cowc_scenarios() -> list[Scenario]:
    out = []
    for name, build in ANON_CASES:
        for backing, populate in (("base page", "write"), ("swapped base page", "swap")):
            parent, child, check = build()
            prog = Program(_anon(populate), _threads(parent, child))
            out.append(Scenario(name, backing, prog, check))
    for name, build in NON_ANON_CASES:
        for backing in ("zeropage", "memfd"):
            ops, check = build()
            prog = Program(_non_anon_mappings(backing), (ThreadSpec(0, tuple(ops)),))
            out.append(Scenario(name, backing, prog, check))
    return out


def slug(text: str) -> str:
    import re
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_corpus(directory, variants_expect=(("upstream", "clean"),)) -> list:
    """Write every scenario as a commented .cow file (the seed corpus)."""
    from dataclasses import replace
    from pathlib import Path

    from fuzz.program.textcodec import format_program
    out = []
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for i, sc in enumerate(cowc_scenarios(), 1):
        prog = replace(sc.program, expect=tuple(variants_expect), found_on="upstream")
        a, ai, b, bi = sc.check
        head = (f"# cow.c: {sc.name} [{sc.backing}]\n"
                f"# passes when the result of {a} op #{ai} equals that of {b} op #{bi}\n")
        path = d / f"cowc-{i:02d}-{slug(sc.name)}-{slug(sc.backing)}.cow"
        path.write_text(head + format_program(prog))
        out.append(path)
    return out
