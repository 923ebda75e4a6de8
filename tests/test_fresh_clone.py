"""The README's two commands in order, in a fresh clone: `cowfuzz fuzz`, then `pytest`.

A campaign keeps its state under campaigns/ (git-ignored) and its findings under
crashes/; corpus/ is only read. So after fuzzing, the clone's tracked files are as they
were, pytest collects what it collected before, and the corpus replays clean through the
pytest plugin (the suite itself runs elsewhere: here it would only run twice)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _collected(clone: Path, env) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]          # "N tests collected in ..."


@pytest.mark.slow
def test_fuzzing_then_testing_in_a_fresh_clone(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(clone)}
    before = _collected(clone, env).split(" in ")[0]

    fuzz = subprocess.run([sys.executable, "-m", "fuzz.cli", "fuzz", "--time", "10", "-q"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert fuzz.returncode in (0, 1), fuzz.stderr
    assert list((clone / "campaigns" / "cowpte-rfc2" / "queue").glob("*.cow"))

    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert set(status) <= {"?? crashes/"}, status
    assert _collected(clone, env).split(" in ")[0] == before

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "corpus", "tests/test_pytest_plugin.py"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=900)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "INTERNALERROR" not in tests.stdout + tests.stderr
