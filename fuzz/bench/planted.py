"""Planted bugs for the strategy tests and benchmarks: GUP-fast without write_protect_seq.

Upstream GUP-fast (FOLL_PIN) samples mm->write_protect_seq before its
lockless walk and re-checks it after (57efa1fe5957 "mm/gup: prevent
gup_fast from racing with COW during fork"). Without the check, a pin
taken while fork is between clearing PageAnonExclusive and write-
protecting the PTE survives: a pinned page that is not exclusive. The
race needs fork and a fast pin in two threads and two preemptions.
"""

from model.kernel import Kernel


class GupFastNoSeqcount(Kernel):
    name = "planted-gup-fast-no-seqcount"
    description = "test-only: GUP-fast ignores write_protect_seq"
    expected_oracle = "VM_BUG_ON"

    async def gup_fast(self, mm, addr, gup_flags):
        folio = await self.gup_fast_pmd_range(mm, addr, gup_flags)
        if folio is not None and gup_flags & (1 << 19):          # FOLL_PIN
            self.sanity_check_pinned_pages([folio])
        return folio


class RoPinNoUnshare(Kernel):
    """A sequential planted bug: a R/O pin of a shared anon page does not unshare it
    first (as before 6.0's FAULT_FLAG_UNSHARE), so pinning after fork trips the
    FOLL_PIN sanity check. No preemption needed."""

    name = "planted-ro-pin-no-unshare"
    description = "test-only: R/O pins never unshare"
    expected_oracle = "VM_BUG_ON"

    def gup_must_unshare(self, vma, flags, folio):
        return False
