"""The minimizer: a padded reproducer of the planted bug shrinks to the known minimal one."""

from __future__ import annotations

import pytest

import subprocess
import sys
from pathlib import Path

from fuzz.runtime.executor import execute
from fuzz.triage.minimize import minimize, size
from fuzz.triage.signature import signature
from fuzz.program.textcodec import format_program, parse_program
from model.variants import load_design

PLANTED_NAME = f"{Path(__file__).with_name('planted.py')}:GupFastNoSeqcount"
PLANTED_SPEC = PLANTED_NAME
PLANTED = load_design(PLANTED_SPEC)
PLANTED_NAME = PLANTED.name

#: the planted bug with padding everywhere: extra mappings, operations before and
#: after the race, a forked child's thread, a bystander thread, four preemptions
PADDED = """cowfuzz 1
map 0 2 anon rw populate=write
map 4 1 file rw populate=read
thread 0
  read 1
  write 4
  fork 1
  write 0
  clear_refs
thread 0
  read 4
  pin 0 0 ro fast longterm
  devread 0
  unpin 0
  write 1
thread 1
  read 0
  write 0
thread 0
  mprotect 4 1 r
  read 0
schedule 0 0 0 0 0 0 0 0 0 0 1 0 0 1 1 0 0 0 0 0 1
"""

#: what it must shrink to: fork racing a fast pin, one preemption
MINIMAL = """cowfuzz 1
map 0 1 anon rw populate=write
thread 0
  fork 1
thread 0
  pin 0 0 ro fast longterm
schedule 0 0 0 0 0 0 0 1
"""


def test_padded_reproducer_shrinks_to_the_known_minimal_one():
    padded = parse_program(PADDED)
    outcome = execute(padded, PLANTED)
    assert outcome.oracle == "VM_BUG_ON"
    result = minimize(padded, PLANTED, PLANTED_NAME, seconds=120)
    assert result.before == {"operations": 14, "threads": 4, "preemptions": 4, "mappings": 2}
    assert result.after == {"operations": 2, "threads": 2, "preemptions": 1, "mappings": 1}
    assert format_program(result.program) == MINIMAL
    # and it still shows the same violation, with the same signature
    again = execute(result.program, PLANTED)
    assert signature(again, PLANTED_NAME) == signature(outcome, PLANTED_NAME)


def test_minimizing_is_deterministic_and_idempotent():
    padded = parse_program(PADDED)
    first = minimize(padded, PLANTED, PLANTED_NAME, seconds=120).program
    second = minimize(padded, PLANTED, PLANTED_NAME, seconds=120).program
    assert format_program(first) == format_program(second)
    again = minimize(first, PLANTED, PLANTED_NAME, seconds=120)
    assert again.program == first and again.after == size(first)


@pytest.mark.slow
def test_cli_minimize_writes_the_result_and_prints_sizes(tmp_path):
    src = tmp_path / "padded.cow"
    src.write_text(PADDED)
    out = tmp_path / "min.cow"
    proc = subprocess.run([sys.executable, "-m", "fuzz.cli", "minimize", str(src), "-o", str(out),
                           "--variant", PLANTED_SPEC], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr            # minimized: done
    assert "14 operations, 4 threads, 4 preemptions -> 2 operations, 2 threads, 1 preemption" \
        in proc.stderr
    assert out.read_text() == MINIMAL


def test_cli_minimize_refuses_a_clean_program(tmp_path):
    src = tmp_path / "clean.cow"
    src.write_text(MINIMAL)
    proc = subprocess.run([sys.executable, "-m", "fuzz.cli", "minimize", str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("nothing to minimize (upstream)")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_ends_the_minimizer_quietly_with_status_130(tmp_path):
    """A long minimization (1,500 operations to drop one at a time), interrupted as soon as
    it says it started."""
    import signal
    src = tmp_path / "long.cow"
    src.write_text("cowfuzz 1\nmap 0 1 anon rw populate=write\nmap 2 1 anon rw "
                   "populate=write\nthread 0\n" + "  read 2\n" * 1500 +
                   "  fork 1\n  pin 0 0 ro slow longterm\n")
    ro_pin = f"{Path(__file__).with_name('planted.py')}:RoPinNoUnshare"
    proc = subprocess.Popen([sys.executable, "-m", "fuzz.cli", "minimize", str(src),
                             "--designs", ro_pin, "--variant", "planted-ro-pin-no-unshare"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline().startswith("cowfuzz: minimizing ")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "cowfuzz: interrupted\n" and out == ""
