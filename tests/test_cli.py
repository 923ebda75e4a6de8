"""The other commands: run, explore, variants, strategies; their output and exit status."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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
        ["coverage", "guided", "portfolio", "random", "pct", "pos", "surw", "exhaustive",
         "hypothesis"]


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


# -- exit status, -q, tokens, --version ------------------------------------------------------
CLEAN_CASE = ROOT / "corpus/reuse-mapcount/vmsplice-unmap-in-child.cow"


def test_run_exits_1_when_a_verdict_differs_from_its_expect_line(tmp_path):
    text = CLEAN_CASE.read_text()
    assert "expect upstream clean" in text
    wrong = tmp_path / "wrong.cow"
    wrong.write_text(text.replace("expect upstream clean", "expect upstream writable-shared"))
    lineno = wrong.read_text().splitlines().index("expect upstream writable-shared") + 1
    proc = cowfuzz("run", wrong, "--variant", "upstream")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[-1] == (
        f"{wrong} on upstream: clean, 53 steps  (expected writable-shared; if clean is right, "
        f"change {wrong}:{lineno} to 'expect upstream clean')")
    right = cowfuzz("run", CLEAN_CASE, "--variant", "upstream")
    assert right.returncode == 0 and right.stdout.endswith("(as expected)\n")


def test_run_quiet_prints_one_line_per_run_and_nothing_else(tmp_path):
    race = tmp_path / "race.cow"
    race.write_text(RACE + "schedule 0 0 0 0 0 0 0 1\n")
    case = CLEAN_CASE.relative_to(ROOT)
    proc = cowfuzz("run", race, case, "-q", "--designs", PLANTED)
    assert proc.returncode == 1               # reuse-mapcount's bug, as expected, is a violation
    assert proc.stdout.splitlines() == [
        f"{race} on upstream: clean, 45 steps",
        f"{case} on reuse-mapcount: writable-shared, 35 steps  (as expected)",
        f"{case} on upstream: clean, 53 steps  (as expected)"]
    failing = cowfuzz("run", race, "-q", "--variant", PLANTED)   # no token, no report
    assert failing.returncode == 1 and failing.stderr == ""
    assert failing.stdout == f"{race} on planted-gup-fast-no-seqcount: VM_BUG_ON, 19 steps\n"


def test_report_takes_a_replay_token(tmp_path):
    race = tmp_path / "race.cow"
    race.write_text(RACE + "schedule 0 0 0 0 0 0 0 1\n")
    token = cowfuzz("run", race, "--variant", PLANTED).stdout.splitlines()[0]
    out = tmp_path / "token.html"
    proc = cowfuzz("report", token, "-o", out, "--designs", PLANTED)
    assert proc.returncode == 1, proc.stderr
    assert "BUG: cowfuzz: VM_BUG_ON in " in out.read_text()
    assert proc.stdout == f"wrote {out}\n"


def test_version():
    proc = cowfuzz("--version")
    from fuzz.program.replay_token import model_version
    assert proc.returncode == 0
    assert re.fullmatch(rf"cowfuzz \S+, model {model_version()}\n", proc.stdout)


# -- Ctrl-C ----------------------------------------------------------------------------------
def interrupted(args, when: str, env=ENV):
    """Run cowfuzz in its own process group, send the group SIGINT (as a terminal's Ctrl-C
    does) once a line containing ``when`` is out, and return (exit status, all output)."""
    proc = subprocess.Popen([sys.executable, "-m", "fuzz.cli", *map(str, args)], cwd=ROOT,
                            env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if when in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=60)
    return proc.returncode, "".join(seen) + rest


@pytest.mark.slow
@pytest.mark.parametrize("when", ["fuzzing", " CRASH "])
def test_ctrl_c_stops_a_campaign_without_a_traceback(tmp_path, when):
    """At start-up (workers still starting) or later (workers and the minimizer busy)."""
    status, out = interrupted(["fuzz", "--variant", PLANTED, "--strategy", "random", "--jobs", 2,
                               "--slice", 1, "--time", 60, "--seed", 1,
                               "--corpus", tmp_path / "corpus", "--crashes", tmp_path / "crashes",
                               "--campaign", tmp_path / "campaign"], when)
    assert status == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out


@pytest.mark.slow
def test_ctrl_c_stops_the_benchmark_at_once_without_a_traceback(tmp_path):
    status, out = interrupted(["bench", "--variants", "reuse-mapcount", "upstream",
                               "--strategies", "random", "--trials", 3, "--budget", 60,
                               "--jobs", 2], "[1/", env={**ENV, "TMPDIR": str(tmp_path)})
    assert status == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert out.splitlines()[-1] == "cowfuzz: interrupted"
    assert list(tmp_path.iterdir()) == [], "the trials stopped left their folders behind"


def test_report_on_an_unknown_variant_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "x.cow").write_text(RACE.replace("cowfuzz 1\n", "cowfuzz 1\nfound-on nosuch\n"))
    named = cowfuzz("report", tmp_path / "x.cow", "-o", tmp_path / "x.html")
    forced = cowfuzz("report", "corpus/cowpte-rfc2/gup-fast-marks-shared-table.cow",
                     "--variant", "nosuch", "-o", tmp_path / "y.html")
    for proc in (named, forced):
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and "unknown variant 'nosuch'" in proc.stderr
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()


def test_explore_is_capped_in_time_by_default():
    from fuzz.cli import EXPLORE_SECONDS, build_parser
    assert build_parser().parse_args(["explore", "x.cow"]).time == EXPLORE_SECONDS < 600
    proc = cowfuzz("explore", "corpus/upstream/cowc-01-basic-cow-after-fork-base-page.cow",
                   "--bound", "50", "--time", "1")
    assert proc.returncode == 0 and "budget reached after" in proc.stdout


def test_a_file_mapping_offset_must_lie_in_the_file(tmp_path):
    for pgoff, what in (("-3", "pgoff must be 0 or more"), ("4", "beyond the 4-page file")):
        (tmp_path / "x.cow").write_text(f"cowfuzz 1\nmap 0 1 file rw pgoff={pgoff}\n"
                                        "thread 0\n  read 0\n")
        proc = cowfuzz("run", tmp_path / "x.cow")
        assert proc.returncode == 2 and what in proc.stderr, proc.stderr
