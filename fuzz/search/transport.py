"""How the coordinator reaches its workers: one small interface, two carriers.

The campaign coordinator (fuzz/search/campaign.py) decides what each worker
does -- which slice, which corpus entries it has not seen -- and keeps all
the bookkeeping; a ``Workers`` object only carries the slice protocol's
messages (fuzz/search/session.py) to and from a numbered worker:

* ``LocalWorkers`` (fuzz/search/local.py): one process per job on this
  machine, a pipe each; each worker journals its findings itself.
* ``RayWorkers`` (fuzz/search/cluster.py): one long-lived Ray actor per CPU
  across a cluster; the coordinator journals the findings the moment a
  result arrives, on its own disk.

Both run the same ``SliceRunner`` (fuzz/search/worker.py) at the far end.
A worker that dies, or whose machine does, comes back from ``wait`` as
``Lost``: its slice is gone (never anything it had reported), and the
coordinator sends the next one to the worker's replacement, which has seen
nothing yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fuzz.search.session import Heartbeat, SliceRequest, SliceResult


@dataclass
class Lost:
    """Worker ``slot`` died and its slice with it; ``why`` is one line. ``quiet``: the
    campaign was stopping, or the worker had no slice running (nothing to say)."""
    slot: int
    why: str
    quiet: bool = False


Message = Heartbeat | SliceResult | Lost


class Workers(Protocol):
    count: int                          # workers, numbered 0 .. count-1

    def describe(self) -> str:
        """One line: what runs the workers ("2 processes", "8 actors on 3 nodes ...")."""

    def start(self, slot: int) -> None:
        """Start worker ``slot``, or replace the one that was lost."""

    def send(self, slot: int, request: SliceRequest) -> bool:
        """Hand ``slot`` its next slice; False if the worker is gone (then ``Lost``
        follows from ``wait``, or the caller starts it again)."""

    def wait(self, busy: list[int], timeout: float, waitables: list) -> list[Message]:
        """What the ``busy`` workers sent, waiting at most ``timeout`` s for something;
        a ready one of ``waitables`` (the stop signal's socket) ends the wait early."""

    def stop_slices(self, busy: list[int]) -> None:
        """Ask the busy workers to end their slices now and send what they have."""

    def stop(self, grace: float) -> None:
        """Tell every worker to exit; any still there after ``grace`` s is killed."""

    def kill(self) -> None:
        """Kill every worker at once (idempotent)."""
