"""Disks that fail a campaign, and campaigns that share one: a full or unwritable folder
is one line (before fuzzing, or when it happens), what is found is saved or printed with
its replay token, and two campaigns never touch each other's files.

The full and read-only disks are small tmpfs mounts (skipped where mounting is not
allowed); the same failures are also injected at the filesystem boundary of the store,
which runs anywhere."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.program.replay_token import parse_token
from fuzz.program.textcodec import parse_program
from fuzz.search import store
from tests.fuzzing import PLANTED, Fuzzing, fuzz_args

SEED = "cowfuzz 1\nexpect upstream clean\nmap 0 1 anon rw populate=write\nthread 0\n  fork 1\n"


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size, readonly=False) -> a fresh tmpfs folder, unmounted afterwards."""
    mounted = []

    def mount(name: str, size: str, readonly: bool = False) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        options = f"size={size}" + (",ro" if readonly else "")
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _saved_or_printed(stdout_lines: list[str]) -> tuple[int, int]:
    """Every CRASH line names a complete crash folder, or says NOT SAVED right after its
    replay token. -> (saved, printed)"""
    saved = printed = 0
    for i, line in enumerate(stdout_lines):
        if " CRASH " not in line:
            continue
        if "NOT SAVED" in line:
            program, _, _ = parse_token(stdout_lines[i - 1].strip())
            assert program.threads
            printed += 1
            continue
        folder = Path(line.rsplit(" -> ", 1)[1].strip())
        for name in ("signature.txt", "input.cow", "token.txt", "meta.json", "trace.txt"):
            assert (folder / name).is_file(), (folder, name)
        parse_program((folder / "input.cow").read_text())
        saved += 1
    return saved, printed


def _no_temporary_names(folder: Path) -> None:
    assert [p.name for p in folder.rglob(".*") if p.name != ".lock"] == []


def test_a_full_crash_folder_prints_what_it_cannot_save(tmp_path, tmpfs):
    crashes = tmpfs("crashes", "200k")
    fuzzing = Fuzzing(tmp_path, "fuzz", "--variant", "cowpte-rfc2", "--strategy", "random",
                      "--seed", 1, "--time", 120, "--crashes", crashes, "--campaign",
                      tmp_path / "campaign", "--corpus", tmp_path / "corpus")
    fuzzing.wait_for("NOT SAVED")
    fuzzing.signal(signal.SIGTERM)
    assert fuzzing.finish(timeout=30) == 143
    assert "Traceback" not in fuzzing.stderr
    assert fuzzing.out[-1].startswith("cowfuzz: DONE ")
    saved, printed = _saved_or_printed([line.rstrip("\n") for line in fuzzing.out])
    assert saved >= 1 and printed >= 1
    assert "No space left on device" in fuzzing.stdout
    _no_temporary_names(crashes)


@pytest.mark.slow
def test_a_full_campaign_folder_is_one_error_line_and_the_campaign_goes_on(tmp_path, tmpfs):
    campaign = tmpfs("campaign", "256k")
    fuzzing = Fuzzing(tmp_path, "fuzz", "--variant", "cowpte-rfc2", "--strategy", "random",
                      "--seed", 1, "--time", 10, "--campaign", campaign, "--crashes",
                      tmp_path / "crashes", "--corpus", tmp_path / "corpus")
    assert fuzzing.finish(timeout=60) == 1
    queue_errors = [line for line in fuzzing.err if "cannot write" in line and "queue" in line]
    assert len(queue_errors) == 1, fuzzing.stderr
    assert "kept in memory only" in queue_errors[0]
    assert "Traceback" not in fuzzing.stderr
    saved, printed = _saved_or_printed([line.rstrip("\n") for line in fuzzing.out])
    assert saved >= 1 and printed == 0
    assert fuzzing.out[-1].startswith("cowfuzz: DONE ")


@pytest.mark.parametrize("which", ["--crashes", "--campaign"])
def test_a_read_only_folder_is_refused_before_fuzzing(tmp_path, tmpfs, capsys, which):
    folder = tmpfs("ro", "64k", readonly=True)
    status = main([*fuzz_args(tmp_path, "--variant", "upstream", "--time", 5), which,
                   str(folder / "x")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert "Read-only file system" in err and "fuzzing" not in err


@pytest.mark.parametrize("which", ["--crashes", "--campaign"])
def test_a_folder_that_is_a_file_is_refused_before_fuzzing(tmp_path, capsys, which):
    (tmp_path / "afile").write_text("")
    status = main([*fuzz_args(tmp_path, "--variant", "upstream", "--time", 5), which,
                   str(tmp_path / "afile")])
    err = capsys.readouterr().err
    assert status == 2 and err == f"{tmp_path / 'afile'}: not a folder\n"


def _fail_under(folder: Path, code: int):
    """``open`` for the store module that fails with ``code`` for writes below ``folder``."""
    real_open = open

    def fake_open(path, mode="r", *args, **kw):
        if any(c in mode for c in "wax") and Path(path).resolve().is_relative_to(folder):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, mode, *args, **kw)
    return fake_open


@pytest.mark.slow
def test_a_crash_folder_that_fails_writes_prints_the_token(tmp_path, capsys, monkeypatch):
    """The same, by injection at the store's filesystem boundary: after the lock and the
    check, every write in the crash folder fails with ENOSPC."""
    crashes = (tmp_path / "crashes").resolve()
    real_lock = store.CrashStore.lock

    def lock_then_fill(self):
        real_lock(self)
        monkeypatch.setattr(store, "open", _fail_under(crashes, errno.ENOSPC), raising=False)
    monkeypatch.setattr(store.CrashStore, "lock", lock_then_fill)
    status = main(fuzz_args(tmp_path, "--variant", PLANTED, "--strategy", "random", "--seed",
                            1, "--time", 60, "--stop-on-crash", "-q"))
    out, err = capsys.readouterr()
    assert status == 1, err
    lines = out.splitlines()
    saved, printed = _saved_or_printed(lines)
    assert (saved, printed) == (0, 1)
    assert "No space left on device" in out and "Traceback" not in err
    _no_temporary_names(crashes)


@pytest.mark.slow
def test_a_queue_that_fails_writes_is_one_line(tmp_path, capsys, monkeypatch):
    def fail(path, text, durable=True):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    monkeypatch.setattr(store, "atomic_write", fail)
    status = main(fuzz_args(tmp_path, "--variant", "upstream", "--strategy", "random",
                            "--seed", 1, "--runs", 300))
    out, err = capsys.readouterr()
    assert status == 0, err
    errors = [line for line in err.splitlines() if "cannot write" in line]
    assert len(errors) == 1 and "Read-only file system" in errors[0]
    assert out.splitlines()[-1].startswith("cowfuzz: DONE ")


@pytest.mark.slow
def test_two_campaigns_on_one_corpus_never_touch_each_others_files(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.cow").write_text(SEED)
    before = sorted(p.name for p in corpus.rglob("*"))
    first = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "upstream", "--strategy",
                                          "random", "--seed", 1, "--time", 120))
    first.wait_for(" NEW ")

    # the same campaign folder: refused, with who holds it
    same = Fuzzing(tmp_path, *fuzz_args(tmp_path, "--variant", "upstream", "--time", 5))
    assert same.finish() == 2
    assert same.err == [f"{tmp_path / 'campaign'}: another campaign (pid {first.proc.pid}) is "
                        "using this campaign folder; wait for it to end, or give this one its "
                        "own folder\n"]

    # its own campaign folder, the same crash folder: refused too
    other = tmp_path / "other"
    shared_crashes = Fuzzing(tmp_path, "fuzz", "--variant", "upstream", "--corpus", corpus,
                             "--crashes", tmp_path / "crashes", "--campaign", other / "campaign",
                             "--time", 5)
    assert shared_crashes.finish() == 2
    assert "is using this crash folder" in shared_crashes.stderr

    # folders of its own, the same seeds: both run, and the seeds stay as they were
    second = Fuzzing(tmp_path, *fuzz_args(other, "--variant", "upstream", "--strategy", "random",
                                           "--seed", 2, "--runs", 300), "--corpus", corpus)
    assert second.finish() == 0, second.stderr
    assert "(1 entries)" in second.err[0]
    first.signal(signal.SIGTERM)
    assert first.finish(timeout=30) == 143
    assert "Traceback" not in first.stderr + second.stderr
    assert first.out[-1].startswith("cowfuzz: DONE ")
    assert sorted(p.name for p in corpus.rglob("*")) == before
    assert list((tmp_path / "campaign" / "queue").glob("*.cow"))
    assert list((other / "campaign" / "queue").glob("*.cow"))
