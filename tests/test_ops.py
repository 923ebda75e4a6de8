"""The operation table: well-formed, documented in the README, and the only place
an operation is defined (one new entry shows everywhere)."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, settings

from fuzz.hyp import operations, programs, weighted_ops
from fuzz.program import bytecodec
from fuzz.program.generate import random_program
from fuzz.program.mutate import mutate
from fuzz.program.ops import (OPERATIONS, VA, Arg, Flag, Operation, by_opcode, markdown,
                              shrink_order, table_errors, vocabulary)
from fuzz.program.program import Mapping, Op, Program, ThreadSpec
from fuzz.program.textcodec import ParseError, format_program, parse_program
from fuzz.runtime.executor import execute
from fuzz.search.strategies.exhaustive import campaign_programs
from fuzz.triage.minimize import simplify_args
from model.flags import EINVAL
from model.kernel import Kernel

README = Path(__file__).resolve().parents[1] / "README.md"
FIND = settings(database=None, max_examples=2000, deadline=None,
                suppress_health_check=list(HealthCheck))


def test_the_table_is_well_formed():
    assert table_errors(Kernel) == []


def test_opcodes_keep_the_byte_format():
    """Renumbering an opcode reinterprets every byte corpus: these are fixed."""
    assert [o.name for o in by_opcode()] == [
        "read", "write", "mmap", "munmap", "mprotect", "dontneed", "pageout", "reclaim",
        "fork", "exit", "pin", "unpin", "devread", "devwrite", "vmsplice", "piperead",
        "clear_refs", "procmem", "signal", "wait", "waitpid", "mremap", "dontfork", "dofork",
        "wipeonfork"]


def test_the_readme_operation_reference_is_the_tables():
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- operations -->\n(.*?)<!-- /operations -->\n", text, re.S)
    assert m, "README.md has an operation reference between <!-- operations --> markers"
    assert m.group(1) == markdown(), \
        "README.md's operation reference is stale: paste `python -m fuzz.program.ops --markdown`"


def test_the_kernel_takes_converted_arguments():
    pin = OPERATIONS["pin"]
    calls = []

    class Recorder:
        def op_pin(self, *args):
            calls.append(args)

    pin.call(Recorder(), "T", (1, 3, "rw", "slow", "longterm"))
    assert calls == [("T", 1, 3, True, False, True)]


def test_the_executor_reports_an_operation_not_in_the_table():
    program = Program((Mapping(0, 1),), (ThreadSpec(0, (Op("bogus", (0,)),)),))
    outcome = execute(program, Kernel)
    assert outcome.verdict == "model-error"
    assert outcome.trace.verdict == "model error: ValueError: unknown operation 'bogus'"


# -- one new entry, seen everywhere ------------------------------------------------------

NOISE = Arg("noise", ("quiet", "loud"), "loud: the kernel gets True", Flag("loud"))


class PokeKernel(Kernel):
    """Upstream plus the ``poke`` entry point."""

    name = "poke-test"

    async def op_poke(self, thread, va: int, loud: bool):
        await self.sched.point("user:poke")
        if not isinstance(loud, bool):
            return -EINVAL
        return 7 if loud else va


@pytest.fixture
def poke(monkeypatch):
    """``poke va noise``, added in the one place an operation is defined."""
    entry = Operation("poke", (VA, NOISE), "op_poke", "pokes `va`", opcode=len(OPERATIONS),
                      rank=len(OPERATIONS), weight=200, vocabulary=((0, "loud"),))
    monkeypatch.setitem(OPERATIONS, "poke", entry)
    return entry


POKE_TEXT = "cowfuzz 1\nmap 0 2 anon rw\nthread 0\n  write 1\n  poke 1 quiet\n  poke 0 loud\n"


def test_a_new_operation_is_well_formed_with_its_kernel(poke):
    assert table_errors(PokeKernel) == []
    assert table_errors(Kernel) == ["poke: Kernel has no method op_poke"]


def test_the_text_codec_parses_a_new_operation(poke):
    program = parse_program(POKE_TEXT)
    assert program.threads[0].ops[1:] == (Op("poke", (1, "quiet")), Op("poke", (0, "loud")))
    assert format_program(program) == POKE_TEXT
    with pytest.raises(ParseError, match="poke: noise must be one of quiet, loud"):
        parse_program(POKE_TEXT.replace("loud", "shout"))


def test_the_byte_codec_round_trips_a_new_operation(poke):
    program = parse_program(POKE_TEXT)
    data = bytecodec.encode(program)
    assert bytecodec.decode(data) == program
    # the opcode byte of the new entry decodes to it, whatever the argument bytes
    decoded = bytecodec.decode(bytes([0, 0, 0, 0, 0, 0, 1, poke.opcode, 17, 5]))
    assert decoded.threads[0].ops == (Op("poke", (1, "loud")),)


def test_the_generator_and_mutator_produce_a_new_operation(poke):
    generated = [op for seed in range(20)
                 for t in random_program(random.Random(seed)).threads for op in t.ops]
    assert any(op.name == "poke" for op in generated)
    rng = random.Random(1)
    base = Program((Mapping(0, 1),), (ThreadSpec(0, ()),))
    mutated = [op for _ in range(200) for t in mutate(rng, base).threads for op in t.ops]
    assert any(op.name == "poke" for op in mutated)


@pytest.mark.slow
def test_hypothesis_draws_a_new_operation(poke):
    assert shrink_order()[-1] == "poke" and "poke" in weighted_ops()
    op = find(operations(), lambda o: o.name == "poke", settings=FIND)
    assert op == Op("poke", (0, "quiet"))                 # shrunk to the first values
    # programs() draws it too (find fails if no example has it)
    find(programs(), lambda p: any(o.name == "poke" for t in p.threads for o in t.ops),
         settings=FIND)


def test_the_executor_runs_a_new_operation(poke):
    outcome = execute(parse_program(POKE_TEXT), PokeKernel)
    assert outcome.verdict == "ok", outcome.trace.render_text()
    text = outcome.trace.render_text()
    assert "P0.T0 < poke = 1" in text          # quiet: False reached the kernel, va returned
    assert "P0.T0 < poke = 7" in text          # loud: True
    assert "user:poke" in text


def test_the_exhaustive_strategy_uses_a_new_operation(poke):
    assert vocabulary()[-1] == Op("poke", (0, "loud"))
    first_stage = itertools.islice(campaign_programs(0, 0, 1), len(vocabulary()) ** 2)
    assert any(o.name == "poke" for p, _ in first_stage for t in p.threads for o in t.ops)


def test_the_minimizer_simplifies_a_new_operations_arguments(poke):
    candidates = [c.threads[0].ops for c in simplify_args(parse_program(POKE_TEXT))]
    write1, quiet1, loud0 = parse_program(POKE_TEXT).threads[0].ops
    assert (write1, Op("poke", (0, "quiet")), loud0) in candidates      # va towards 0
    assert (write1, quiet1, Op("poke", (0, "quiet"))) in candidates     # noise towards quiet


def test_the_readme_generator_lists_a_new_operation(poke):
    text = markdown()
    assert "| `poke va noise` | pokes `va`. | `op_poke` |" in text
    assert "| `noise` | quiet\\|loud | loud: the kernel gets True |" in text
