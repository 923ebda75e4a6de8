"""The other commands: run, explore, variants, strategies; their output and exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANTED = f"{Path(__file__).with_name('planted.py')}:GupFastNoSeqcount"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RACE = """cowfuzz 1
map 0 1 anon rw populate=write
thread 0
  fork 1
thread 0
  pin 0 0 ro fast longterm
"""


def cowfuzz(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_run_replays_the_corpus_clean():
    proc = cowfuzz("run", "corpus/upstream", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # one line per (file, variant it expects a verdict on)
    expectations = sum(max(1, f.read_text().count("\nexpect "))
                       for f in (ROOT / "corpus/upstream").glob("*.cow"))
    assert len(lines) == expectations
    assert all(line.endswith("(as expected)") for line in lines)


def test_run_prints_token_trace_and_verdict_of_a_violation(tmp_path):
    race = tmp_path / "race.cow"
    race.write_text(RACE + "schedule 0 0 0 0 0 0 0 1\n")
    proc = cowfuzz("run", race, "--variant", PLANTED)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert out[0].startswith("cowfuzz1:")
    assert out[1].startswith("BUG: cowfuzz: VM_BUG_ON in ")
    assert any(line.startswith("Verdict: VM_BUG_ON: pinned anon page") for line in out)
    refused = cowfuzz("run", out[0])                 # a token never loads a design
    assert refused.returncode == 2 and "unknown variant 'planted-gup-fast-no-seqcount'" \
        in refused.stderr and len(refused.stderr.splitlines()) == 1
    again = cowfuzz("run", out[0], "--designs", PLANTED)   # declared: the token replays it
    assert again.returncode == 1
    assert again.stdout.splitlines()[1:] == out[1:-1] + [again.stdout.splitlines()[-1]]


def test_explore_proves_the_bound_on_upstream_and_finds_the_race_on_the_planted_bug(tmp_path):
    race = tmp_path / "race.cow"
    race.write_text(RACE)
    clean = cowfuzz("explore", race, "--variant", "upstream", "--bound", 2)
    assert clean.returncode == 0
    assert "no violation: all" in clean.stdout and "with at most 2 preemptions" in clean.stdout
    buggy = cowfuzz("explore", race, "--variant", PLANTED, "--bound", 2)
    assert buggy.returncode == 1
    assert buggy.stdout.startswith("cowfuzz1:")
    assert "violation after" in buggy.stdout.splitlines()[-1]


def test_variants_and_strategies_are_listed():
    variants = cowfuzz("variants")
    assert variants.returncode == 0 and variants.stdout.startswith("upstream ")
    strategies = cowfuzz("strategies").stdout.split("\n")
    assert [line.split()[0] for line in strategies if line] == \
        ["coverage", "libfuzzer", "random", "pct", "pos", "surw", "exhaustive", "hypothesis"]


def test_a_missing_file_is_one_line_and_exit_2(tmp_path):
    proc = cowfuzz("run", tmp_path / "nope.cow")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert str(tmp_path / "nope.cow") in proc.stderr


def test_report_writes_the_html_report(tmp_path):
    out = tmp_path / "race.html"
    proc = cowfuzz("report", "corpus/cowpte-rfc2/gup-fast-marks-shared-table.cow", "-o", out)
    assert proc.returncode == 1, proc.stderr
    html = out.read_text()
    assert "BUG: cowfuzz: VM_BUG_ON in " in html and "Content-Security-Policy" in html
    clean = cowfuzz("report", "corpus/cowpte-rfc2/gup-fast-marks-shared-table.cow",
                    "--variant", "upstream", "-o", tmp_path / "clean.html")
    assert clean.returncode == 0
