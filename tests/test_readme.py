"""The README's promises: its example variant works as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def example_variant() -> str:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- example-variant -->\n```python\n(.*?)```", readme, re.S)
    assert m, "README has the example variant"
    return m.group(1)


def cowfuzz(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_readme_example_variant_runs_and_is_caught(tmp_path):
    (tmp_path / "my_design.py").write_text(example_variant())
    variant = "my_design.py:ReuseByMapcount"
    case = ROOT / "corpus/upstream/cowc-05-vmsplice-unmap-in-child-base-page.cow"
    run = cowfuzz("run", case, "--variant", variant, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "on reuse-by-mapcount: writable-shared" in run.stdout
    # the first violation of seed 2 is the pipe's (the design also trips do_swap_page)
    campaign = cowfuzz("fuzz", "--variant", variant, "--strategy", "random", "--time", 60,
                       "--seed", 2, "--stop-on-crash", "--minimize-time", 10, cwd=tmp_path)
    assert campaign.returncode == 1, campaign.stderr
    assert " CRASH writable-shared:" in campaign.stdout
    assert list((tmp_path / "crashes" / "reuse-by-mapcount").glob("*/repro.cow"))
