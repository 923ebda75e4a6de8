"""The pytest plugin: .cow files as test items, in any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fuzz.program.textcodec import read_program

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def pytest_in(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pytest",
                           "-q", "--rootdir", str(cwd), "-c", os.devnull, *map(str, args)],
                          cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def test_the_corpus_is_collected_one_item_per_expectation():
    files = [p for p in (ROOT / "corpus").rglob("*.cow") if "queue" not in p.parts]
    expected = sum(len(read_program(p).expect) for p in files)
    proc = pytest_in(ROOT, "--collect-only", ROOT / "corpus")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{expected} tests collected" in proc.stdout


def test_a_wrong_expectation_fails_with_the_crash_report(tmp_path):
    source = next((ROOT / "corpus" / "reuse-mapcount").glob("*.cow")).read_text()
    (tmp_path / "repro.cow").write_text(
        source.replace("expect reuse-mapcount writable-shared", "expect reuse-mapcount clean"))
    proc = pytest_in(tmp_path, tmp_path)
    assert proc.returncode == 1
    assert "1 failed, 1 passed" in proc.stdout
    assert "repro.cow on reuse-mapcount: expected clean, got writable-shared" in proc.stdout
    assert "BUG: cowfuzz: writable-shared in " in proc.stdout


def test_a_corrupt_file_is_a_collection_error_naming_the_line(tmp_path):
    (tmp_path / "bad.cow").write_text("cowfuzz 1\nthread 0\n  write\n")
    proc = pytest_in(tmp_path, tmp_path)
    assert proc.returncode != 0
    assert f"{tmp_path / 'bad.cow'}:3: write takes 1 arguments" in proc.stdout
