"""The historical-bug variants (model/variants/historical/, one file each).

Every registered historical variant carries complete metadata; its hand-written
reproducer (corpus/<name>/*.cow) fires exactly its expected oracle and is clean
upstream; its cow.c failures (tests/cowc.py, numbered as the files of
corpus/upstream/) are exactly the set recorded here (COWC_FAILURES); and
docs/historical.md, which shows all of that, is up to date.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import model.variants.historical as historical
from fuzz.runtime.executor import execute
from tests import historical_doc
from tests.cowc import cowc_scenarios
from fuzz.program.textcodec import read_program
from model.kernel import Kernel
from model.oracles.errors import oracle_names
from tests.helpers import results

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
HISTORICAL = historical_doc.historical_variants()
ORACLES = oracle_names()

#: cow.c scenario (the number of its corpus/upstream/cowc-NN-*.cow file) -> the oracle
#: that fails it, per variant; every other scenario passes (cow.c's comparison holds)
_PAGE_COUNT_REUSE = {13: "pin-coherence", 14: "pin-coherence",
                     **{n: "pin-coherence" for n in range(17, 29)},
                     **{n: "pin-coherence" for n in range(31, 35)}}
COWC_FAILURES: dict[str, dict[int, str]] = {
    "dirty-cow": {},
    "reuse-mapcount": {n: "writable-shared" for n in range(5, 13)},
    "swapin-reuse-mapcount": {6: "writable-shared", 8: "writable-shared"},
    "fork-gup-fast-race": {},
    "fork-no-early-cow": {15: "pin-coherence", 16: "pin-coherence"},
    "reuse-refcount": _PAGE_COUNT_REUSE,
    "misplaced-unlock-page": {},
    "ro-pin-no-unshare": {n: "VM_BUG_ON" for n in range(17, 25)},
    "no-unshare-non-anon": {n: "pin-coherence" for n in range(31, 35)},
    "swapout-pinned-race": {},
    "swapout-pinned": {},
    "mprotect-ignores-pae": {3: "writable-shared", 7: "writable-shared"},
    "clear-refs-pinned": _PAGE_COUNT_REUSE,
}


def test_the_historical_variants_are_registered():
    assert set(HISTORICAL) == set(COWC_FAILURES)
    for cls in HISTORICAL.values():
        assert issubclass(cls, Kernel) and cls is not Kernel


@pytest.mark.parametrize("name", sorted(HISTORICAL))
def test_each_variant_has_its_own_file(name):
    module = f"{historical.__name__}.{name.replace('-', '_')}"
    assert HISTORICAL[name].__module__ == module, f"{name} belongs in {module}"


def test_docs_historical_md_is_up_to_date():
    stored = historical_doc.DOC.read_text() if historical_doc.DOC.is_file() else None
    assert stored == historical_doc.render(COWC_FAILURES), \
        f"docs/historical.md is out of date: run {historical_doc.REGENERATE}"


@pytest.mark.parametrize("name", sorted(HISTORICAL))
def test_metadata_is_complete(name):
    cls = HISTORICAL[name]
    assert cls.name == name and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name)
    for attr in ("description", "affected", "fix"):
        value = vars(cls).get(attr)          # the variant's own, not inherited
        assert isinstance(value, str) and value.strip() and value != "-", attr
        assert "\n" not in value, f"{attr} is one line"
    assert cls.expected_oracle in ORACLES
    m = re.fullmatch(r"([0-9a-f]{12}) (\S.*)", cls.fix)
    assert m, f"fix {cls.fix!r} is not '<12-hex commit> <title>'"
    doc = inspect.getdoc(cls)
    assert doc and m.group(1) in doc, "the docstring names the fix commit"
    # ... and cites the pre-fix kernel function with its version
    assert re.search(r"\w+/[\w/]+\.[ch]:\w+ \(v\d+\.\d+", doc), \
        "the docstring cites the pre-fix function and version"


@pytest.mark.parametrize("name", sorted(HISTORICAL))
def test_reproducer_fires_exactly_the_expected_oracle(name):
    cls = HISTORICAL[name]
    files = sorted((CORPUS / name).glob("*.cow"))
    assert files, f"no reproducer in corpus/{name}/"
    for path in files:
        program = read_program(path)
        expect = dict(program.expect)
        assert expect.get(name) == cls.expected_oracle, path
        assert expect.get("upstream") == "clean", path
        assert program.found_on == name, path
        outcome = execute(program, cls)
        assert outcome.failed and outcome.oracle == cls.expected_oracle, \
            f"{path} on {name}:\n{outcome.trace.render_text()}"
        assert not execute(program, Kernel).failed, f"{path} is not clean upstream"


SCENARIOS = cowc_scenarios()


def cowc_failures(cls) -> dict[int, str]:
    failures = {}
    for number, sc in enumerate(SCENARIOS, 1):
        outcome = execute(sc.program, cls)
        if outcome.verdict != "ok":
            failures[number] = outcome.status
            continue
        r = results(outcome)
        a, i, b, j = sc.check
        if r[a][i] != r[b][j]:
            failures[number] = "cow.c comparison"
    return failures


@pytest.mark.parametrize("name", sorted(HISTORICAL))
def test_cowc_failures_are_the_recorded_set(name):
    assert cowc_failures(HISTORICAL[name]) == COWC_FAILURES[name]


def test_upstream_passes_every_cowc_case():
    assert cowc_failures(Kernel) == {}
