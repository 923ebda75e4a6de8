"""The regression corpus: every .cow file under corpus/ with expectations replays to its
recorded verdict on every variant it names (correct variants clean, known-bug variants
still showing their bug). Campaign queues (corpus/*/queue/) are inputs, not regressions."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.executor import execute
from fuzz.textcodec import read_program
from model.variants import get_variant

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CASES = [(path, variant, verdict)
         for path in sorted(CORPUS.rglob("*.cow")) if "queue" not in path.parts
         for variant, verdict in read_program(path).expect]


def test_the_corpus_has_expectations():
    assert len({p for p, _, _ in CASES}) >= 34


@pytest.mark.parametrize("path, variant, verdict", CASES,
                         ids=[f"{p.relative_to(CORPUS)}@{v}" for p, v, _ in CASES])
def test_corpus_file_replays_to_its_recorded_verdict(path, variant, verdict):
    outcome = execute(read_program(path), get_variant(variant))
    got = "clean" if not outcome.failed else (outcome.oracle or outcome.verdict)
    assert got == verdict, f"{path} on {variant}:\n{outcome.trace.render_text()}"
