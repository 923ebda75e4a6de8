"""A `cowfuzz fuzz` subprocess for the campaign tests: its output read line by line as it
comes, so a test waits for an event (a CRASH line, the first NEW) instead of sleeping."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PLANTED = f"{Path(__file__).with_name('planted.py')}:GupFastNoSeqcount"


def fuzz_args(folder: Path, *args) -> list[str]:
    """Seeds, crashes and the campaign's own folder inside ``folder``."""
    return ["fuzz", "--corpus", str(folder / "corpus"), "--crashes", str(folder / "crashes"),
            "--campaign", str(folder / "campaign"), *map(str, args)]


class Fuzzing:
    """A cowfuzz process in its own process group (so a test can signal all of it, as a
    terminal's Ctrl-C does)."""

    def __init__(self, cwd: Path, *argv, env=None):
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "fuzz.cli", *map(str, argv)],
                                     cwd=cwd, env=env or ENV, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._events: queue.Queue = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list) -> None:
        for line in stream:
            lines.append(line)
            self._events.put(line)
        self._events.put(None)

    def wait_for(self, text: str, timeout: float = 180) -> str:
        """The first line (from now on) containing ``text``; fails if the process ends or
        ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        ended = 0
        while True:
            try:
                line = self._events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{self.stderr[-3000:]}")
            if line is None:
                ended += 1
                if ended == 2:
                    raise AssertionError(f"ended without {text!r}:\n{self.stderr[-3000:]}")
                continue
            if text in line:
                return line

    def signal(self, signum: int, group: bool = False) -> None:
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def finish(self, timeout: float = 180) -> int:
        """Wait for the exit; the status."""
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_group_gone(fuzzing: Fuzzing, timeout: float = 30) -> bool:
    """Whether every process of the group has exited within ``timeout`` (the
    coordinator's children may outlive it by a moment: the kernel kills them)."""
    deadline = time.monotonic() + timeout
    while fuzzing.group_alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
