"""The processes of a campaign: they die with their parent and keep their files inside it.

Every process a campaign starts (workers, the minimizer, each worker's
libFuzzer) asks the kernel to SIGKILL it when its parent dies
(PR_SET_PDEATHSIG), so a coordinator killed by SIGKILL leaves no orphan that
goes on fuzzing or prints a traceback into a closed pipe. Each also takes a
folder of the campaign's as its TMPDIR, so whatever a library puts in a
temporary file lands where the next campaign on the folder removes it.

A Ctrl-C reaches every process of the terminal's process group, one still
starting its interpreter included, where it would end in a
KeyboardInterrupt traceback. So children start with SIGINT and SIGTERM
blocked (``signals_held``: a signal mask survives fork and exec) and unblock
them once their own handlers are in place (``release_signals``). The
coordinator itself turns both signals into a request to stop
(``StopSignals``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import tempfile
import threading
from contextlib import contextmanager
from multiprocessing import resource_tracker

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None = None) -> None:
    """Get SIGKILL when the parent dies, however it dies (Linux; elsewhere nothing). With
    ``expected_parent``, exit at once if the parent is already gone."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(0)


def use_tmpdir(folder: str) -> None:
    """Make ``folder`` this process's TMPDIR, and its children's."""
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_held():
    """Block SIGINT and SIGTERM while starting a child: it inherits the mask. What the
    parent receives meanwhile is delivered when the block ends."""
    # multiprocessing starts its resource tracker with the first child, and unblocks
    # both signals when it has: start it first
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def release_signals() -> None:
    """In the child, once its handlers are set: let SIGINT and SIGTERM in."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def ignore_ctrl_c() -> None:
    """In a child its parent stops by SIGTERM (a process pool's): Ctrl-C is the parent's
    to handle, so ignore SIGINT, then let both signals in."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    release_signals()


class StopSignals:
    """SIGINT and SIGTERM ask the campaign to stop instead of killing it. The handler only
    records the signal; a wakeup socket makes the coordinator's wait return at once.
    Installed only in the main thread (Python delivers signals there)."""

    def __init__(self):
        self.signum: int | None = None
        self._saved = None
        self._sockets = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._sockets = (reader, writer)
            old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            self._saved = (old_fd, signal.signal(signal.SIGINT, self._handle),
                           signal.signal(signal.SIGTERM, self._handle))
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def waitables(self) -> list:
        return [self._sockets[0]] if self._sockets else []

    def drain(self) -> None:
        if self._sockets:
            try:
                while self._sockets[0].recv(64):
                    pass
            except OSError:
                pass

    def __exit__(self, *exc):
        if self._saved is not None:
            old_fd, old_int, old_term = self._saved
            signal.set_wakeup_fd(old_fd)
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
            for s in self._sockets:
                s.close()
            self._saved = self._sockets = None
        return False
