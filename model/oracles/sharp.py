"""The sharper oracles, run after the state invariants of every step.

Each lives in its own module and can be switched off by a class attribute
(tests compare how many preemptions a broken design needs with and
without it):

* lost writes as a state invariant (model/oracles/lost_writes.py);
* the narrower TLB excuse, checked when munmap, MADV_DONTNEED, mprotect or
  mremap returns (model/oracles/tlb_promise.py);
* the fork window: no fault changes a VMA dup_mmap has write-locked
  (model/oracles/fork_window.py).
"""

from __future__ import annotations

from model.oracles.fork_window import ForkWindowOracle
from model.oracles.invariants import Invariants
from model.oracles.lost_writes import LostWriteInvariant
from model.oracles.tlb_promise import TlbPromise


class SharpOracles(LostWriteInvariant, TlbPromise, ForkWindowOracle, Invariants):
    """The state invariants, then the sharper oracles."""

    def after_step(self, step) -> None:
        super().after_step(step)
        self.tlb_promise_after_step(step)
        self.lost_writes_after_step(step)
