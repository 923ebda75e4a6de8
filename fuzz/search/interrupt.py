"""Ctrl-C belongs to the coordinating process.

A terminal sends SIGINT to every process of the foreground group: the
campaign's workers, its minimizer, the benchmark's trial processes. Only
the process the user started acts on it (stops the children, prints one
line, exits 130); children ignore it, from their first instruction on: a
parent starts them with SIGINT blocked (the signal mask is inherited across
fork and exec), and a child ignores it before unblocking it. So a Ctrl-C
during a child's start-up prints no traceback either.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from multiprocessing import resource_tracker


@contextmanager
def sigint_blocked():
    """Start child processes inside this: they begin with SIGINT blocked. A Ctrl-C in the
    meantime reaches this process when the block ends."""
    # multiprocessing's resource tracker unblocks SIGINT in this process when it starts
    # (spawning a child starts it): have it running before blocking
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_sigint() -> None:
    """In a child process: ignore SIGINT (the parent handles Ctrl-C), then unblock it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
