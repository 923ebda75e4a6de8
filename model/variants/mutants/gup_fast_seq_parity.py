"""GUP-fast checks write_protect_seq for a fork in progress, not for one that ran."""

from __future__ import annotations

from model.flags import FOLL_PIN
from model.kernel import Kernel
from model.variants import register


@register
class GupFastSeqParity(Kernel):
    """GUP-fast checks write_protect_seq for a fork in progress, not for one that ran.

    MUTANT of the write_protect_seq read section of 57efa1fe5957 "mm/gup: prevent
    gup_fast from racing with COW during fork" (v5.11). GUP-fast (FOLL_PIN)
    samples mm->write_protect_seq before its lockless walk and, after it, calls
    read_seqcount_retry(): any fork that wrote the sequence meanwhile -- running
    or finished -- sends the pin back to the slow path: mm/gup.c:gup_fast (v7.0).
    Here the second check only asks whether a fork is running now (an odd
    sequence), as if a fork could not start and finish within the walk. A fork
    that begins after the sample, lets the walk grab and re-check the page
    between clearing PageAnonExclusive and write-protecting the PTE, and ends
    before the check leaves a pinned page shared with the child: the FOLL_PIN
    sanity check (v5.19) reports it (VM_BUG_ON).

    The reproducer needs four preemptions: the pin's sample before the fork,
    its walk inside fork's window, and its check after the fork.
    """

    name = "gup-fast-seq-parity"
    description = "mutant: GUP-fast re-checks write_protect_seq for parity only, not for change"
    expected_oracle = "VM_BUG_ON"
    tier = "deep"
    affected = "none (mutant of 57efa1fe5957, v5.11)"
    fix = "57efa1fe5957 mm/gup: prevent gup_fast from racing with COW during fork"

    async def gup_fast(self, mm, addr: int, gup_flags: int):
        """mm/gup.c:gup_fast (v7.0) whose retry tests ``raw_read_seqcount() & 1``
        instead of read_seqcount_retry(seq)."""
        sched = self.sched
        if gup_flags & FOLL_PIN:
            await sched.point("gup_fast:raw_seqcount_try_begin")
            if mm.write_protect_seq.raw_read_seqcount() & 1:
                return None
        folio = await self.gup_fast_pmd_range(mm, addr, gup_flags)
        if gup_flags & FOLL_PIN:
            await sched.point("gup_fast:read_seqcount_retry")
            if mm.write_protect_seq.raw_read_seqcount() & 1:
                if folio is not None:
                    self.gup_put_folio(folio, FOLL_PIN)     # gup_fast_unpin_user_pages
                return None
            if folio is not None:
                self.sanity_check_pinned_pages([folio])
        return folio
