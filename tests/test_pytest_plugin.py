"""The pytest plugin: .cow files as test items, in any directory."""

from __future__ import annotations

import pytest

import os
import subprocess
import sys
from pathlib import Path

from fuzz.program.textcodec import read_program

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def pytest_in(cwd, *args, verbosity="-q"):
    return subprocess.run([sys.executable, "-m", "pytest",
                           verbosity, "--rootdir", str(cwd), "-c", os.devnull, *map(str, args)],
                          cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_corpus_is_collected_one_item_per_expectation():
    files = [p for p in (ROOT / "corpus").rglob("*.cow") if "queue" not in p.parts]
    expected = sum(len(read_program(p).expect) for p in files)
    proc = pytest_in(ROOT, "--collect-only", ROOT / "corpus")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{expected} tests collected" in proc.stdout


@pytest.mark.slow
def test_a_wrong_expectation_fails_with_one_line_naming_the_expect_line(tmp_path):
    source = next((ROOT / "corpus" / "reuse-mapcount").glob("*.cow")).read_text()
    text = source.replace("expect reuse-mapcount writable-shared", "expect reuse-mapcount clean")
    (tmp_path / "repro.cow").write_text(text)
    lineno = text.splitlines().index("expect reuse-mapcount clean") + 1
    proc = pytest_in(tmp_path, tmp_path)
    assert proc.returncode == 1
    assert "1 failed, 1 passed" in proc.stdout
    section = proc.stdout.split(" FAILURES ")[1].split(" short test summary info ")[0]
    assert section.splitlines()[2:-1] == [
        f"repro.cow on reuse-mapcount: expected clean, got writable-shared; "
        f"if writable-shared is right, change repro.cow:{lineno} to "
        "'expect reuse-mapcount writable-shared'"]
    assert "BUG: cowfuzz:" not in proc.stdout
    # with -v, the crash report follows the line
    verbose = pytest_in(tmp_path, tmp_path, verbosity="-v")
    assert verbose.returncode == 1
    assert "expected clean, got writable-shared; if writable-shared is right" in verbose.stdout
    assert "BUG: cowfuzz: writable-shared in " in verbose.stdout and "Lane log:" in verbose.stdout


@pytest.mark.slow
def test_a_fixed_bug_names_the_line_to_change_and_shows_the_trace_with_v(tmp_path):
    """The other way round: the design no longer fails where the file expects it to."""
    source = next((ROOT / "corpus" / "upstream").glob("*.cow")).read_text()
    assert "expect upstream clean" in source
    text = source.replace("expect upstream clean", "expect upstream writable-shared")
    (tmp_path / "fixed.cow").write_text(text)
    lineno = text.splitlines().index("expect upstream writable-shared") + 1
    proc = pytest_in(tmp_path, tmp_path)
    assert proc.returncode == 1
    assert (f"fixed.cow on upstream: expected writable-shared, got clean; if clean is right, "
            f"change fixed.cow:{lineno} to 'expect upstream clean'") in proc.stdout
    assert "Verdict: ok" not in proc.stdout
    assert "Verdict: ok" in pytest_in(tmp_path, tmp_path, verbosity="-v").stdout


@pytest.mark.slow
def test_a_corrupt_file_is_a_collection_error_naming_the_line(tmp_path):
    (tmp_path / "bad.cow").write_text("cowfuzz 1\nthread 0\n  write\n")
    proc = pytest_in(tmp_path, tmp_path)
    assert proc.returncode != 0
    assert f"{tmp_path / 'bad.cow'}:3: write takes 1 arguments" in proc.stdout
