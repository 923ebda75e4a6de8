"""Campaigns end to end, as `cowfuzz fuzz` runs them: saved before reported, resumable
after SIGKILL, robust to corrupt corpus files and to a worker dying."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzz.runtime.executor import execute
from fuzz.triage.signature import signature
from fuzz.program.textcodec import parse_program
from fuzz.program.replay_token import parse_token
from model.variants import get_variant, load_design

ROOT = Path(__file__).resolve().parents[1]
PLANTED = f"{Path(__file__).with_name('planted.py')}:GupFastNoSeqcount"
PLANTED_NAME = load_design(PLANTED).name
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CRASH_FILES = {"signature.txt", "input.cow", "trace.txt", "token.txt", "meta.json",
               "report.html"}


def fuzz_cmd(tmp_path, *args):
    return [sys.executable, "-m", "fuzz.cli", "fuzz", "--corpus", str(tmp_path / "corpus"),
            "--crashes", str(tmp_path / "crashes"), "--campaign", str(tmp_path / "campaign"),
            *map(str, args)]


def start(tmp_path, *args, env=ENV):
    return subprocess.Popen(fuzz_cmd(tmp_path, *args), cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def run(tmp_path, *args, timeout=180):
    return subprocess.run(fuzz_cmd(tmp_path, *args), cwd=tmp_path, env=ENV, text=True,
                          capture_output=True, timeout=timeout)


def assert_complete_crash_folder(folder: Path, variant: str) -> None:
    """Every file there is whole: it parses, and the input still shows the signature."""
    names = {p.name for p in folder.iterdir()}
    assert CRASH_FILES <= names, names
    assert not [n for n in names if n.startswith(".")]
    sig = (folder / "signature.txt").read_text().strip()
    program = parse_program((folder / "input.cow").read_text(), str(folder / "input.cow"))
    assert signature(execute(program, get_variant(variant)), variant) == sig
    token = (folder / "token.txt").read_text().strip()
    assert parse_token(token)[0] == program
    html = (folder / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html
    # one mode for everything written there, whichever way it was written
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == \
        {name: 0o644 for name in names}
    # trace.txt is the report of the input, then (once minimized) of repro.cow
    trace = (folder / "trace.txt").read_text()
    assert trace.startswith("BUG: cowfuzz: VM_BUG_ON in ")
    assert "\nVerdict: VM_BUG_ON: " in trace
    traced = parse_token(next(line.split()[1] for line in trace.splitlines()
                              if line.startswith("token:")))[0]
    if "repro.cow" in names:
        repro = parse_program((folder / "repro.cow").read_text(), str(folder / "repro.cow"))
        assert signature(execute(repro, get_variant(variant)), variant) == sig
        assert traced == repro
    else:
        assert traced == program


@pytest.mark.slow
def test_crash_is_saved_before_it_is_reported_then_minimized(tmp_path):
    proc = start(tmp_path, "--variant", PLANTED, "--strategy", "random", "--seed", 1,
                 "--time", 90, "--stop-on-crash", "--slice", 2, "--minimize-time", 30)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if " CRASH " in line:
            # the moment the crash is reported, its folder is complete on disk
            folder = Path(line.rsplit("-> ", 1)[1].split()[0])
            assert_complete_crash_folder(tmp_path / folder if not folder.is_absolute()
                                         else folder, PLANTED_NAME)
    proc.wait(timeout=120)
    err = proc.stderr.read()
    assert proc.returncode == 1, err
    out = "".join(lines)
    token_line = next(i for i, s in enumerate(lines) if s.startswith("cowfuzz1:"))
    crash_line = next(i for i, s in enumerate(lines) if " CRASH " in s)
    assert token_line < crash_line                     # the replay token comes first
    assert "cowfuzz: minimized VM_BUG_ON:" in out
    assert lines[-1].startswith("cowfuzz: DONE ") and "violations 1 unique/" in lines[-1]
    folders = list((tmp_path / "crashes").iterdir())
    folders = [f for f in folders if f.is_dir()]
    assert len(folders) == 1
    assert_complete_crash_folder(folders[0], PLANTED_NAME)
    repro = parse_program((folders[0] / "repro.cow").read_text())
    assert repro.op_count() <= 3 and repro.preemptions() <= 2
    assert repro.expect[0][1] == "VM_BUG_ON"


def _until(condition, seconds: float) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (polled: the campaign is another
    process, and says nothing when it gets there)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _group_gone(pgid: int, seconds: float) -> bool:
    def gone():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False
    return _until(gone, seconds)


@pytest.mark.slow
def test_sigkill_loses_nothing_and_the_campaign_resumes(tmp_path):
    proc = start(tmp_path, "--variant", PLANTED, "--strategy", "random", "--seed", 2,
                 "--time", 120, "--slice", 1, "--minimize-time", 60)
    for line in proc.stdout:
        if " CRASH " in line:
            break
    queue = tmp_path / "campaign" / "queue"
    assert _until(lambda: any(queue.glob("*.cow")), 30), "no corpus entry reached the queue"
    os.kill(proc.pid, signal.SIGKILL)   # the coordinator only: its workers must notice
    proc.wait(timeout=10)
    assert _group_gone(proc.pid, 30), "workers outlived their coordinator"
    crashes = [f for f in (tmp_path / "crashes").iterdir() if f.is_dir()]
    assert len(crashes) == 1 and not crashes[0].name.startswith(".")
    assert_complete_crash_folder(crashes[0], PLANTED_NAME)
    queue = list((tmp_path / "campaign" / "queue").glob("*.cow"))
    assert queue
    for path in queue:                  # every corpus entry is whole
        parse_program(path.read_text(), str(path))

    again = run(tmp_path, "--variant", PLANTED, "--strategy", "random", "--seed", 3,
                "--time", 6, "--slice", 2, "--minimize-time", 60)
    assert again.returncode in (0, 1), again.stderr
    first = again.stderr.splitlines()[0]
    assert f"({len(queue)} entries)" in first and "(1 known)" in first
    assert again.stdout.splitlines()[-1].startswith("cowfuzz: DONE ")
    assert_complete_crash_folder(crashes[0], PLANTED_NAME)
    assert (crashes[0] / "repro.cow").exists()         # the resumed run finished minimizing


@pytest.mark.slow
def test_corrupt_corpus_files_are_skipped_with_one_line_each(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.cow").write_text("cowfuzz 1\nmap 0 1 anon rw populate=write\n"
                                     "thread 0\n  fork 1\n  write 0\n")
    (corpus / "bad.cow").write_text("cowfuzz 1\nthread 0\n  bogus 1\n")
    (corpus / "binary.cow").write_bytes(b"\x00\xff\xfe garbage")
    proc = run(tmp_path, "--variant", "upstream", "--strategy", "random", "--runs", 300,
               "--seed", 1)
    assert proc.returncode == 0, proc.stderr
    warnings = [s for s in proc.stderr.splitlines() if "skipping" in s]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"cowfuzz: warning: skipping corrupt corpus file "
                                  f"{corpus / 'bad.cow'}:3: unknown operation 'bogus'")
    assert warnings[1] == (f"cowfuzz: warning: skipping corrupt corpus file "
                           f"{corpus / 'binary.cow'}:1: not a text file")
    assert "(1 entries)" in next(s for s in proc.stderr.splitlines() if "fuzzing" in s)
    assert proc.stdout.splitlines()[-1].startswith("cowfuzz: DONE ")


def _worker_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    out = []
    for child in map(int, children):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            out.append(child)
    return out


@pytest.mark.slow
def test_a_dead_worker_is_restarted_and_the_campaign_goes_on(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = start(tmp_path, "--variant", "upstream", "--strategy", "random", "--jobs", 2,
                 "--time", 12, "--seed", 1,
                 "--slice", 2, env={**ENV, "TMPDIR": str(scratch)})
    assert _until(lambda: len(_worker_pids(proc.pid)) == 2, 30), "the workers never started"
    workers = _worker_pids(proc.pid)
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "died (exit status -9); its slice is lost, restarting it" in err
    assert out.splitlines()[-1].startswith("cowfuzz: DONE ")
    assert list(scratch.iterdir()) == []    # the killed worker's scratch space too


@pytest.mark.parametrize("args, message", [
    (("--strategy", "nope"), "unknown strategy 'nope'"),
    (("--variant", "nope"), "unknown variant 'nope'"),
    (("--time", "-1"), "--time must be a positive number of seconds"),
    (("--jobs", "0"), "--jobs must be positive"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, args, message):
    proc = run(tmp_path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_campaign_logged_to_a_file_shows_events_and_plots(tmp_path):
    proc = run(tmp_path, "--variant", "upstream", "--strategy", "random", "--time", 12,
               "--seed", 1, "--slice", 3)
    assert proc.returncode == 0, proc.stderr
    events = [line.split()[2] for line in proc.stderr.splitlines()
              if line.startswith("cowfuzz: #")]
    assert "NEW" in events and "pulse" in events
    assert proc.stdout.splitlines()[-1].startswith("cowfuzz: DONE ")
    data = (tmp_path / "crashes" / "plot_data.csv").read_text().splitlines()
    assert data[0].startswith("seconds,executions,execs_per_s,lines,features,corpus,")
    assert len(data) >= 3
    plot = subprocess.run([sys.executable, "-m", "fuzz.cli", "plot", str(tmp_path / "crashes")],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert plot.returncode == 0, plot.stderr
    png = tmp_path / "crashes" / "campaign.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
