"""The processes of a campaign: they die with their parent and keep their files inside it.

Every process a campaign starts (workers, the minimizer, each worker's
libFuzzer) asks the kernel to SIGKILL it when its parent dies
(PR_SET_PDEATHSIG), so a coordinator killed by SIGKILL leaves no orphan that
goes on fuzzing or prints a traceback into a closed pipe. Each also takes a
folder of the campaign's as its TMPDIR, so whatever a library puts in a
temporary file lands where the next campaign on the folder removes it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import tempfile

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
