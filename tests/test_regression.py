"""Findings kept as regression tests: ``cowfuzz corpus add`` and the expect-line helpers."""

from __future__ import annotations

import pytest

import os
import subprocess
import sys
from pathlib import Path

from fuzz.program.textcodec import parse_program, read_program
from fuzz.runtime.executor import execute
from fuzz.triage.regression import expect_line, mismatch_message
from fuzz.triage.signature import signature, signature_slug
from model.variants import load_design

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PLANTED = f"{Path(__file__).with_name('planted.py')}:GupFastNoSeqcount"
PLANTED_CLS = load_design(PLANTED)
NAME = PLANTED_CLS.name
RACE = f"""cowfuzz 1
found-on {NAME}
expect {NAME} VM_BUG_ON
map 0 1 anon rw populate=write
thread 0
  fork 1
thread 0
  pin 0 0 ro fast longterm
schedule 0 0 0 0 0 0 0 1
"""


def cowfuzz(cwd, *args):
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=120)


def crash_folder(tmp_path, *, repro: str | None = None) -> tuple[Path, str]:
    """A crash folder as a campaign leaves it: input.cow, signature.txt (and repro.cow)."""
    folder = tmp_path / "crashes" / NAME / "VM_BUG_ON-x"
    folder.mkdir(parents=True)
    padded = RACE.replace("map 0 1 anon rw populate=write\n",
                          "map 0 1 anon rw populate=write\nmap 4 2 anon rw\n")
    (folder / "input.cow").write_text("# found by the random strategy\n" + padded)
    sig = signature(execute(parse_program(RACE), PLANTED_CLS), NAME)
    (folder / "signature.txt").write_text(sig + "\n")
    if repro is not None:
        (folder / "repro.cow").write_text(repro)
    return folder, sig


def test_expect_line_and_the_one_line_message():
    text = f"cowfuzz 1\n# expect upstream clean\nexpect {NAME} VM_BUG_ON\nexpect upstream clean\n"
    assert expect_line(text, "upstream") == 4 and expect_line(text, NAME) == 3
    assert expect_line(text, "dirty-cow") is None
    assert mismatch_message("a.cow", "upstream", "clean", "isolation", 4) == (
        "a.cow on upstream: expected clean, got isolation; if isolation is right, change "
        "a.cow:4 to 'expect upstream isolation'")


def test_a_crash_folder_becomes_a_regression_test_named_after_its_signature(tmp_path):
    folder, sig = crash_folder(tmp_path, repro=RACE)
    proc = cowfuzz(tmp_path, "corpus", "add", folder, "tests", "--designs", PLANTED)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "tests" / f"{signature_slug(sig)}.cow"
    assert proc.stdout == (f"wrote {path.relative_to(tmp_path)}: expect {NAME} VM_BUG_ON, "
                           "expect upstream clean\n")
    written = read_program(path)
    assert written == parse_program(RACE)                   # the reproducer, not the input
    assert written.expect == ((NAME, "VM_BUG_ON"), ("upstream", "clean"))
    assert path.read_text().startswith(f"# {sig}\n# from {folder / 'repro.cow'}\n")
    assert path.stat().st_mode & 0o777 == 0o644
    # the same again: the same file, updated in place
    again = cowfuzz(tmp_path, "corpus", "add", folder, "tests", "--designs", PLANTED)
    assert again.stdout.startswith(f"updated {path.relative_to(tmp_path)}:")
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_without_repro_cow_the_input_is_kept(tmp_path):
    folder, sig = crash_folder(tmp_path)
    proc = cowfuzz(tmp_path, "corpus", "add", folder, "tests", "--designs", PLANTED)
    assert proc.returncode == 0, proc.stderr
    written = read_program(tmp_path / "tests" / f"{signature_slug(sig)}.cow")
    assert written == read_program(folder / "input.cow")
    # another program under the same name does not overwrite the first
    (folder / "repro.cow").write_text(RACE)
    other = cowfuzz(tmp_path, "corpus", "add", folder, "tests", "--designs", PLANTED)
    assert other.returncode == 0 and other.stdout.startswith(
        f"wrote tests/{signature_slug(sig)}-2.cow:")


def test_a_verdict_other_than_the_recorded_one_writes_nothing(tmp_path):
    folder, _sig = crash_folder(tmp_path, repro=RACE)
    proc = cowfuzz(tmp_path, "corpus", "add", folder, "tests", "--expect", "clean",
                   "--designs", PLANTED)
    assert proc.returncode == 1
    assert proc.stderr == (f"cowfuzz: {folder / 'repro.cow'} on {NAME}: VM_BUG_ON, but "
                           "--expect clean: nothing written (if VM_BUG_ON is right: "
                           "--expect VM_BUG_ON)\n")
    assert not (tmp_path / "tests").exists()
    # on another design: its own verdict (nothing recorded for it), the folder's name
    upstream = cowfuzz(tmp_path, "corpus", "add", folder, "tests", "--variant", "upstream")
    assert upstream.returncode == 0, upstream.stderr
    assert upstream.stdout == "wrote tests/VM_BUG_ON-x.cow: expect upstream clean\n"


@pytest.mark.slow
def test_a_file_or_a_token_with_expect_clean_on_upstream(tmp_path):
    source = tmp_path / "race.cow"
    source.write_text(RACE.replace(f"found-on {NAME}\nexpect {NAME} VM_BUG_ON\n", ""))
    proc = cowfuzz(tmp_path, "corpus", "add", source, "dest", "--expect", "clean")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "wrote dest/race.cow: expect upstream clean\n"
    assert read_program(tmp_path / "dest" / "race.cow").expect == (("upstream", "clean"),)
    token = cowfuzz(tmp_path, "run", source, "--variant", PLANTED).stdout.splitlines()[0]
    by_token = cowfuzz(tmp_path, "corpus", "add", token, "dest", "--designs", PLANTED)
    assert by_token.returncode == 0, by_token.stderr
    assert by_token.stdout.startswith("wrote dest/VM_BUG_ON-") and \
        by_token.stdout.endswith(f"expect {NAME} VM_BUG_ON, expect upstream clean\n")


@pytest.mark.slow
def test_bad_usage_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "race.cow").write_text(RACE)
    for args, message in [
        (("corpus", "add", tmp_path, "out"), "not a crash folder (no repro.cow or input.cow)"),
        (("corpus", "add", "race.cow", "file"), "file: not a folder"),
        (("corpus", "add", "race.cow", "out", "--expect", "bogus", "--designs", PLANTED),
         "--expect bogus: not a verdict"),
        (("corpus", "add", "race.cow", "out"), f"unknown variant '{NAME}'"),
    ]:
        proc = cowfuzz(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()
