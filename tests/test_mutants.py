"""The mutants (model/variants/mutants/), most of the deep tier of the bug benchmark.

Every variant there is a race with complete metadata; its hand-written
reproducer (corpus/<name>/*.cow) fires exactly its expected oracle and is
clean upstream; and cow.c, a sequential suite, sees nothing in it that the
design it builds on does not already show: each bug needs a race.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import model.variants.mutants as mutants
from fuzz.bench.bugs import tier
from fuzz.program.textcodec import read_program
from fuzz.runtime.executor import execute
from model.kernel import Kernel
from model.oracles.errors import oracle_names
from model.variants import VARIANTS, base_design
from tests.test_historical import cowc_failures

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MUTANTS = {name: cls for name, cls in VARIANTS.items()
           if cls.__module__.startswith(mutants.__name__ + ".")}


def test_the_deep_tier_has_six_races_each_with_a_reproducer():
    deep = sorted(name for name in VARIANTS if tier(name) == "deep")
    assert len(deep) >= 6
    for name in deep:
        files = sorted((CORPUS / name).glob("*.cow"))
        assert files, f"no reproducer in corpus/{name}/"
        for path in files:
            program = read_program(path)
            assert program.preemptions() >= 1, f"{path} needs no race"
            assert not execute(program.with_schedule(()), VARIANTS[name]).failed, path


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_metadata_is_complete(name):
    cls = MUTANTS[name]
    assert cls.name == name and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name)
    for attr in ("description", "affected", "fix"):
        value = vars(cls).get(attr)
        assert isinstance(value, str) and value.strip() and value != "-", attr
        assert "\n" not in value, f"{attr} is one line"
    assert cls.expected_oracle in oracle_names()
    m = re.fullmatch(r"([0-9a-f]{12}) (\S.*)", cls.fix)
    assert m, f"fix {cls.fix!r} is not '<12-hex commit> <title>'"
    doc = vars(cls).get("__doc__")
    assert doc and m.group(1) in doc, "the docstring names the commit it reverts or perturbs"
    assert re.search(r"\w+/[\w/]+\.[ch]:\w+ \(v\d+\.\d+", inspect.cleandoc(doc)), \
        "the docstring cites the kernel function it perturbs, with its version"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_reproducer_fires_exactly_the_expected_oracle(name):
    cls = MUTANTS[name]
    files = sorted((CORPUS / name).glob("*.cow"))
    assert files, f"no reproducer in corpus/{name}/"
    for path in files:
        program = read_program(path)
        expect = dict(program.expect)
        assert expect.get(name) == cls.expected_oracle and expect.get("upstream") == "clean"
        assert program.found_on == name, path
        outcome = execute(program, cls)
        assert outcome.failed and outcome.oracle == cls.expected_oracle, \
            f"{path} on {name}:\n{outcome.trace.render_text()}"
        assert not execute(program, Kernel).failed, f"{path} is not clean upstream"
        # a race: without its preemptions the program is clean on the mutant too (how
        # deep it is -- a random walk's median executions -- fuzz.bench.depth measures)
        assert program.preemptions() >= 1
        assert not execute(program.with_schedule(()), cls).failed, f"{path} needs no race"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_cowc_sees_nothing_beyond_the_base_design(name):
    cls = MUTANTS[name]
    assert cowc_failures(cls) == cowc_failures(base_design(cls))
