"""Hostile inputs: whatever a .cow file or a replay token holds, every command ends in
exit 0, 1 or 2 -- an error is one line --, within 10 s and 500 MB, and never runs code.

Hypothesis writes the .cow texts and tokens (their found-on and expect lines name files,
modules and junk); the special files (a FIFO, /dev/zero, a folder), the zlib bombs and
the size extremes are listed by hand. Most cases run in this process through
``fuzz.cli.main``; a few, where a hang or a leak would be the process's own, run as
subprocesses with their resource usage read back.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import resource
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.cli import main
from fuzz.program.program import (MAX_CHOICE, MAX_INPUT_BYTES, MAX_MAPPINGS, MAX_OPS,
                                  MAX_SCHEDULE, MAX_THREADS)
from fuzz.program.replay_token import PREFIX, model_version
from model.oracles.errors import oracle_names

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SECONDS = 10.0
MEGABYTES = 500

#: a design whose import leaves a canary: what a mailed reproducer would try to run
EVIL = '''
from pathlib import Path
Path(__file__).with_name("CANARY").write_text("code ran")
from model.kernel import Kernel
class Evil(Kernel):
    name = "evil"
'''
#: names an attacker puts where a design name goes
HOSTILE_NAMES = ["evil.py:Evil", "./evil.py:Evil", "../attack/evil.py:Evil", "evilmod:Evil",
                 "evilmod", "evil", "this:X", "this", "os:system", "subprocess:Popen",
                 "/etc/passwd", "evil.py", "evilmod.Evil", "upstream", "cowpte-rfc2",
                 "x" * 5000, "é:é", "-", "."]
PROGRAM = "map 0 1 anon rw populate=write\nthread 0\n  fork 1\n  write 0\n"


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attack")
    (folder / "evil.py").write_text(EVIL)
    (folder / "evilmod").mkdir()
    (folder / "evilmod" / "__init__.py").write_text(EVIL)
    return folder


def _no_code_ran(folder: Path, out: str) -> None:
    assert not (folder / "CANARY").exists()
    assert not (folder / "evilmod" / "CANARY").exists()
    assert "Beautiful is better than ugly" not in out      # import this


def _maxrss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def invoke(folder: Path, *argv) -> tuple[int, str, str]:
    """``cowfuzz ARGV`` in this process, in ``folder`` (also on sys.path, so a module
    named there would import), checked against every bound."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    sys.path.insert(0, str(folder))
    rss, start = _maxrss_mb(), time.monotonic()
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([str(a) for a in argv])
    finally:
        os.chdir(cwd)
        sys.path.remove(str(folder))
    seconds, grown = time.monotonic() - start, _maxrss_mb() - rss
    check(folder, argv, status, out.getvalue(), err.getvalue(), seconds, grown)
    return status, out.getvalue(), err.getvalue()


def check(folder, argv, status, out, err, seconds, grown_mb) -> None:
    what = f"cowfuzz {' '.join(str(a)[:80] for a in argv)}"
    assert status in (0, 1, 2), f"{what}: exit {status}\n{err[-2000:]}"
    assert "Traceback" not in out + err, f"{what}:\n{err[-3000:]}"
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and len(lines[0]) <= 1000, f"{what}: {err[:3000]}"
    assert seconds < SECONDS, f"{what} took {seconds:.1f} s"
    assert grown_mb < MEGABYTES, f"{what} grew {grown_mb:.0f} MB"
    _no_code_ran(folder, out)


#: runs ``cowfuzz ARGV`` and writes the process's peak RSS (VmHWM, KiB) to the file named
#: first: the high-water mark of its own address space, where wait4's ru_maxrss would also
#: count the address space of the process it was forked from (a test process that has
#: grown, e.g. by a Ray driver)
MEASURED_CLI = """
import atexit, sys
from pathlib import Path
peak_file, argv = Path(sys.argv[1]), sys.argv[2:]
def peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_file.write_text(line.split()[1])
atexit.register(peak)
from fuzz.cli import main
sys.argv = ["cowfuzz", *argv]
sys.exit(main(argv))
"""


def run_measured(folder: Path, *argv, stdin=None) -> tuple[int, str, str]:
    """``cowfuzz ARGV`` as a subprocess; its peak memory, killed at 30 s."""
    out_path, err_path, peak_path = folder / ".out", folder / ".err", folder / ".peak"
    peak_path.unlink(missing_ok=True)
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", MEASURED_CLI, str(peak_path),
                                 *map(str, argv)],
                                cwd=folder, env=ENV, stdout=out, stderr=err,
                                stdin=stdin or subprocess.DEVNULL)
    timer = threading.Timer(30, proc.kill)
    timer.start()
    start = time.monotonic()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    out, err = out_path.read_text(), err_path.read_text()
    # killed at 30 s: no peak written, and wait4's (over-counting) figure stands in
    peak_kb = int(peak_path.read_text()) if peak_path.is_file() else usage.ru_maxrss
    check(folder, argv, proc.returncode, out, err, seconds, peak_kb / 1024)
    return proc.returncode, out, err


# -- generated .cow texts and tokens --------------------------------------------------------
def _word():
    return st.one_of(st.sampled_from(HOSTILE_NAMES),
                     st.text(st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")),
                             min_size=1, max_size=40).filter(lambda s: not s.isspace()))


def _int():
    return st.one_of(st.integers(-3, 20), st.integers(-10**12, 10**12),
                     st.sampled_from([MAX_CHOICE, MAX_CHOICE + 1, 2**63, -2**63]))


VERDICTS = st.one_of(st.sampled_from(sorted(oracle_names()) + ["clean", "model-error"]),
                     _word())
OPS = ["read {}", "write {}", "fork {}", "exit", "pin {} {} ro fast longterm", "unpin {}",
       "mmap {} {} file rw", "munmap {} {}", "mprotect {} {} r", "pageout {} {}", "bogus {}"]


@st.composite
def lines(draw):
    kind = draw(st.sampled_from(["found-on", "expect", "map", "thread", "op", "schedule",
                                 "faults", "file-pages", "junk"]))
    if kind == "found-on":
        return f"found-on {draw(_word())}"
    if kind == "expect":
        return f"expect {draw(_word())} {draw(VERDICTS)}"
    if kind == "map":
        options = draw(st.lists(st.sampled_from(["pgoff={}", "populate=write", "populate=x"]),
                                max_size=2))
        words = [str(draw(_int())), str(draw(_int())),
                 draw(st.sampled_from(["anon", "file", "shared", "junk"])),
                 draw(st.sampled_from(["rw", "r", "x"]))]
        return "map " + " ".join(words + [o.format(draw(_int())) for o in options])
    if kind == "thread":
        return f"thread {draw(_int())}"
    if kind == "op":
        template = draw(st.sampled_from(OPS))
        return "  " + template.format(*[draw(_int()) for _ in range(template.count("{}"))])
    if kind == "schedule":
        return "schedule " + " ".join(map(str, draw(st.lists(_int(), max_size=30))))
    if kind == "faults":
        return f"faults {draw(st.sampled_from(['on', 'off', 'maybe']))}"
    if kind == "file-pages":
        return f"file-pages {draw(_int())}"
    return draw(_word())


@st.composite
def cow_texts(draw):
    header = draw(st.sampled_from(["cowfuzz 1", "cowfuzz 1", "cowfuzz 1", "cowfuzz 2", "", "#"]))
    body = draw(st.lists(lines(), max_size=12))
    if draw(st.booleans()):
        body = PROGRAM.splitlines() + body
    return "\n".join([header, *body]) + "\n"


def token(variant: str, text: str, version: str | None = None) -> str:
    blob = base64.urlsafe_b64encode(zlib.compress(text.encode())).decode().rstrip("=")
    return f"{PREFIX}:{version or model_version()}:{variant}:{blob}"


COMMANDS = st.sampled_from([("run",), ("run", "-q"), ("minimize", "--time", "1"),
                            ("explore", "--time", "1", "--bound", "1"),
                            ("report", "-o", "out.html")])
SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@SETTINGS
@given(text=cow_texts(), command=COMMANDS)
def test_any_cow_file_ends_cleanly_and_runs_no_code(attack, text, command):
    (attack / "x.cow").write_text(text)
    name, *extra = command
    invoke(attack, name, "x.cow", *extra)


@pytest.mark.slow
@SETTINGS
@given(variant=_word(), text=cow_texts(), command=COMMANDS.filter(lambda c: c[0] != "report"))
def test_any_token_ends_cleanly_and_runs_no_code(attack, variant, text, command):
    name, *extra = command
    invoke(attack, name, token(variant, text), *extra)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(junk=st.text(max_size=200))
def test_any_string_that_looks_like_a_token_ends_cleanly(attack, junk):
    invoke(attack, "run", f"{PREFIX}:{junk}")


# -- special files ----------------------------------------------------------------------------
@pytest.fixture
def specials(tmp_path):
    """A folder of .cow names that are not regular files, and an ordinary one."""
    folder = tmp_path / "specials"
    folder.mkdir()
    os.mkfifo(folder / "fifo.cow")
    (folder / "zero.cow").symlink_to("/dev/zero")
    (folder / "folder.cow").mkdir()
    (folder / "dangling.cow").symlink_to(folder / "nowhere")
    return folder


@pytest.mark.parametrize("name, message", [
    ("fifo.cow", "not a regular file"),
    ("zero.cow", "not a regular file"),
    ("dangling.cow", "No such file or directory"),
])
@pytest.mark.parametrize("command", ["run", "minimize", "explore", "report"])
def test_a_special_file_is_refused_at_once(attack, specials, name, message, command):
    extra = ["-o", "out.html"] if command == "report" else []
    status, _, err = invoke(attack, command, specials / name, *extra)
    assert status == 2 and message in err


def test_dev_zero_itself_is_refused(attack):
    status, _, err = invoke(attack, "run", "/dev/zero")
    assert status == 2 and "not a regular file" in err


def test_a_folder_of_special_files_is_refused_in_one_line(attack, specials):
    status, _, err = invoke(attack, "run", specials)
    assert status == 2


def test_a_fifo_does_not_hang_a_fresh_process(attack, specials):
    status, _, err = run_measured(attack, "run", specials / "fifo.cow")
    assert status == 2 and "not a regular file" in err


@pytest.mark.slow
def test_special_files_in_a_corpus_cost_one_warning_each(attack, specials, tmp_path):
    (specials / "good.cow").write_text(f"cowfuzz 1\n{PROGRAM}")
    status, out, err = run_measured(attack, "fuzz", "--variant", "upstream", "--strategy",
                                    "random", "--runs", 30, "--seed", 1, "--corpus", specials,
                                    "--crashes", tmp_path / "crashes", "--campaign",
                                    tmp_path / "campaign")
    assert status == 0, err
    warnings = [line for line in err.splitlines() if "skipping" in line]
    assert len(warnings) == 4, err                 # fifo, zero, dangling, and the folder
    assert "(1 entries)" in next(line for line in err.splitlines() if "fuzzing" in line)
    assert out.splitlines()[-1].startswith("cowfuzz: DONE ")


def _pytest(folder: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-c", os.devnull, "--rootdir", str(folder), *map(str, args)],
                          cwd=folder, env=ENV, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_pytest_plugin_reports_special_and_odd_files_without_crashing(specials):
    """pytest passes over special files itself; what reaches the plugin -- a file that
    does not parse, one that names code, one without expectations -- is an error or a
    skip, never pytest's INTERNALERROR."""
    (specials / "no_expect.cow").write_text(f"cowfuzz 1\n{PROGRAM}")
    (specials / "bad.cow").write_text("cowfuzz 1\nthread 0\n  write\n")
    (specials / "evil.cow").write_text(f"cowfuzz 1\nexpect evil.py:Evil clean\n{PROGRAM}")
    proc = _pytest(specials, specials, specials / "fifo.cow", specials / "zero.cow")
    assert "INTERNALERROR" not in proc.stdout + proc.stderr, proc.stdout
    assert proc.returncode in (1, 2, 4), proc.stdout           # errors, never a crash (3)
    assert "bad.cow:3: write takes 1 arguments" in proc.stdout
    assert "not a variant name" in proc.stdout
    _no_code_ran(specials, proc.stdout)
    alone = _pytest(specials, specials / "no_expect.cow")
    assert alone.returncode == 0 and "1 skipped" in alone.stdout, alone.stdout


# -- bombs and size extremes ------------------------------------------------------------------
@pytest.mark.slow
def test_a_zlib_bomb_token_stops_at_the_limit(attack):
    bomb = token("upstream", "#" * (200 << 20))
    assert len(bomb) < 400_000
    status, _, err = invoke(attack, "run", bomb)
    assert status == 2 and "over the size limit" in err


def test_a_token_cut_short_is_refused(attack):
    whole = token("upstream", f"cowfuzz 1\n{PROGRAM}")
    status, _, err = invoke(attack, "run", whole[:-8])
    assert status == 2 and "corrupt replay token" in err


def _threads(n: int, ops: int = 1) -> str:
    return "cowfuzz 1\nmap 0 1 anon rw\n" + ("thread 0\n" + "  read 0\n" * ops) * n


@pytest.mark.parametrize("text, limit", [
    (_threads(MAX_THREADS + 1), "threads"),
    (_threads(10_000), "threads"),
    (_threads(50_000), "threads"),
    (_threads(1, MAX_OPS + 1), "operations"),
    ("cowfuzz 1\n" + "map 0 1 anon rw\n" * (MAX_MAPPINGS + 1), "mappings"),
    ("cowfuzz 1\nschedule " + "0 " * (MAX_SCHEDULE + 1), "schedule choices"),
    (f"cowfuzz 1\nschedule {MAX_CHOICE + 1}", "schedule choices"),
    ("cowfuzz 1\nschedule " + "9" * 5000, "small integer"),
    ("cowfuzz 1\nmap 0 1 file rw pgoff=-3", "pgoff"),
    ("cowfuzz 1\nmap 0 1 file rw pgoff=99999", "beyond the 4-page file"),
    ("cowfuzz 1\nmap 0 1 anon rw pgoff=2", "pgoff"),
    ("cowfuzz 1\n" + "x" * (MAX_INPUT_BYTES - 20), "unknown line"),
    ("cowfuzz 1\n" + "# padding\n" * (MAX_INPUT_BYTES // 10), "size limit"),
], ids=["65-threads", "10k-threads", "50k-threads", "ops", "mappings", "schedule",
        "choice", "digits", "pgoff-negative", "pgoff-huge", "pgoff-anon", "long-line", "big"])
def test_each_bound_has_a_one_line_error_naming_it(attack, text, limit):
    (attack / "x.cow").write_text(text)
    status, _, err = invoke(attack, "run", "x.cow")
    assert status == 2 and limit in err, err


def test_a_50_megabyte_file_is_refused_without_being_read(attack):
    with open(attack / "big.cow", "wb") as f:
        f.truncate(50 << 20)
    status, _, err = run_measured(attack, "run", "big.cow")
    assert status == 2 and "size limit" in err


def _largest_program() -> str:
    """A program at every bound at once."""
    ops = ["read 0", "write 5", "fork 1", "pin 0 1 rw fast longterm", "unpin 0", "mprotect 0 4 r",
           "munmap 2 2", "mmap 2 2 anon rw", "dontneed 0 16", "pageout 0 16"]
    body = ["cowfuzz 1", "map 0 16 anon rw populate=write"]
    for t in range(MAX_THREADS):
        body.append("thread 0")
        body += [f"  {ops[(t * 7 + i) % len(ops)]}" for i in range(MAX_OPS // MAX_THREADS)]
    body.append("schedule " + " ".join(str(i * 37 % (MAX_CHOICE + 1))
                                       for i in range(MAX_SCHEDULE)))
    return "\n".join(body) + "\n"


@pytest.mark.parametrize("command", [("run",), ("minimize", "--time", "2"),
                                     ("explore", "--time", "2"), ("report", "-o", "out.html")])
@pytest.mark.slow
def test_a_program_at_every_bound_runs_within_time_and_memory(attack, command):
    (attack / "max.cow").write_text(_largest_program())
    name, *extra = command
    status, _, _ = invoke(attack, name, "max.cow", *extra)
    assert status in (0, 1)


@pytest.mark.slow
def test_a_program_at_every_bound_in_a_fresh_process(attack):
    (attack / "max.cow").write_text(_largest_program())
    status, _, _ = run_measured(attack, "explore", "max.cow", "--time", "3")
    assert status in (0, 1)


def test_long_offending_text_is_cut_short(attack):
    (attack / "x.cow").write_text("cowfuzz 1\nthread 0\n  " + "y" * 900_000 + "\n")
    status, _, err = invoke(attack, "run", "x.cow")
    assert status == 2 and len(err) < 600 and "unknown operation 'yyy" in err
