"""The README's promises: its example variant works as written, and its walk from a
crash to a regression test goes as it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def readme_python(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", readme, re.S)
    assert m, f"README has the {marker} block"
    return m.group(1)


def cowfuzz(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def pytest_in(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_readme_example_variant_is_caught_and_kept_as_a_regression_test(tmp_path):
    (tmp_path / "my_design.py").write_text(readme_python("example-variant"))
    variant = "my_design.py:ReuseByMapcount"
    case = ROOT / "corpus/upstream/cowc-05-vmsplice-unmap-in-child-base-page.cow"
    run = cowfuzz("run", case, "--variant", variant, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "on reuse-by-mapcount: writable-shared" in run.stdout
    # the README's campaign: the design also loses writes through do_swap_page and
    # try_to_unmap_one, found first; the pipe's writable-shared comes within seconds
    campaign = cowfuzz("fuzz", "--variant", variant, "--strategy", "random", "--time", 30,
                       "--seed", 2, "--minimize-time", 10, cwd=tmp_path)
    assert campaign.returncode == 1, campaign.stderr
    assert " CRASH writable-shared:" in campaign.stdout
    crashes = tmp_path / "crashes" / "reuse-by-mapcount"
    assert list(crashes.glob("*/repro.cow"))

    # From a crash to a regression test, as the README walks it
    folder = sorted(crashes.glob("writable-shared-*"))[0]
    name = f"{folder.name}.cow"
    added = cowfuzz("corpus", "add", folder.relative_to(tmp_path), "regressions/",
                    "--designs", variant, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert added.stdout == (f"wrote regressions/{name}: expect reuse-by-mapcount "
                            "writable-shared, expect upstream clean\n")
    (tmp_path / "pytest.ini").write_text(f"[pytest]\ncowfuzz_designs = {variant}\n")
    assert pytest_in(tmp_path, "regressions/").returncode == 0
    # the fix
    (tmp_path / "my_design.py").write_text(readme_python("example-variant-fixed"))
    failing = pytest_in(tmp_path, "regressions/")
    assert failing.returncode == 1
    lineno = (tmp_path / "regressions" / name).read_text().splitlines().index(
        "expect reuse-by-mapcount writable-shared") + 1
    assert (f"regressions/{name} on reuse-by-mapcount: expected writable-shared, got clean; "
            f"if clean is right, change regressions/{name}:{lineno} to "
            "'expect reuse-by-mapcount clean'") in failing.stdout
    assert "Lane log" not in failing.stdout and "Verdict" not in failing.stdout
    # a verdict that is not the one asked for: one line, nothing written
    refused = cowfuzz("corpus", "add", folder.relative_to(tmp_path), "regressions/",
                      "--designs", variant, cwd=tmp_path)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "clean, but its expect line says writable-shared: nothing written" in refused.stderr
    updated = cowfuzz("corpus", "add", folder.relative_to(tmp_path), "regressions/",
                      "--expect", "clean", "--designs", variant, cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout == (f"updated regressions/{name}: expect reuse-by-mapcount clean, "
                              "expect upstream clean\n")
    assert [p.name for p in (tmp_path / "regressions").iterdir()] == [name]
    assert pytest_in(tmp_path, "regressions/").returncode == 0
