"""Opening an input never runs code: a .cow file or a replay token names a design by its
registered name only, and every command refuses a path or module in one line, exit 2."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from fuzz.program.replay_token import PREFIX, model_version

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

#: a design whose import leaves a canary: the attack a mailed reproducer would try
EVIL = '''
from pathlib import Path
Path(__file__).with_name("CANARY").write_text("code ran")
from model.kernel import Kernel
class Evil(Kernel):
    name = "evil"
'''
PROGRAM = "map 0 1 anon rw populate=write\nthread 0\n  write 0\n"


def _token(variant: str) -> str:
    text = f"cowfuzz 1\n{PROGRAM}".encode()
    blob = base64.urlsafe_b64encode(zlib.compress(text)).decode().rstrip("=")
    return f"{PREFIX}:{model_version()}:{variant}:{blob}"


@pytest.fixture
def attack(tmp_path):
    (tmp_path / "evil.py").write_text(EVIL)
    (tmp_path / "evilmod").mkdir()
    (tmp_path / "evilmod" / "__init__.py").write_text(EVIL)
    return tmp_path


HOSTILE_NAMES = ["evil.py:Evil", "./evil.py:Evil", "evilmod:Evil", f"{'x' * 5000}.py:Evil"]
HEADERS = [f"found-on {n}\n" for n in HOSTILE_NAMES] + \
    [f"expect {n} clean\n" for n in HOSTILE_NAMES]


def cowfuzz(cwd, *args):
    return subprocess.run([sys.executable, "-m", "fuzz.cli", *map(str, args)], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=60)


def _refused(proc, attack):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 400, proc.stderr
    assert "not a variant name" in lines[0]
    assert not (attack / "CANARY").exists()
    assert not (attack / "evilmod" / "CANARY").exists()


COMMANDS = {"run": [], "minimize": [], "explore": [], "report": ["-o", "out.html"],
            "corpus": ["dest"]}


def _command(attack, command, source):
    words = ["corpus", "add"] if command == "corpus" else [command]
    return cowfuzz(attack, *words, source, *COMMANDS[command])


@pytest.mark.parametrize("header", HEADERS, ids=range(len(HEADERS)))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_cow_file_naming_code_is_refused_without_running_it(attack, header, command):
    (attack / "x.cow").write_text(f"cowfuzz 1\n{header}{PROGRAM}")
    proc = _command(attack, command, "x.cow")
    _refused(proc, attack)
    assert proc.stderr.startswith("x.cow:2: ")          # the file and the line


@pytest.mark.parametrize("variant", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_token_naming_code_is_refused_without_running_it(attack, variant, command):
    _refused(_command(attack, command, _token(variant)), attack)


@pytest.mark.slow
def test_the_pytest_plugin_never_loads_what_a_cow_file_names(attack):
    (attack / "test_x.cow").write_text(f"cowfuzz 1\nexpect evil.py:Evil clean\n{PROGRAM}")
    (attack / "test_y.cow").write_text(f"cowfuzz 1\nexpect evilmod:Evil clean\n{PROGRAM}")
    proc = subprocess.run([sys.executable, "-m", "pytest",
                           "-q", "--rootdir", str(attack), "test_x.cow", "test_y.cow"],
                          cwd=attack, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "not a variant name" in proc.stdout
    assert not (attack / "CANARY").exists()
    assert not (attack / "evilmod" / "CANARY").exists()


def test_the_user_still_declares_a_design_of_their_own(attack):
    """What the user names on the command line is theirs to run: --designs loads it, and
    then a file may name it."""
    (attack / "x.cow").write_text(f"cowfuzz 1\nexpect evil clean\n{PROGRAM}")
    refused = cowfuzz(attack, "run", "x.cow")
    assert refused.returncode == 2 and "unknown variant 'evil'" in refused.stderr
    assert not (attack / "CANARY").exists()
    ran = cowfuzz(attack, "run", "x.cow", "--designs", "evil.py:Evil")
    assert ran.returncode == 0, ran.stderr
    assert "on evil: clean" in ran.stdout and (attack / "CANARY").exists()
