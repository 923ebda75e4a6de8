"""Every oracle fires, naming what it saw, on a small deliberately broken kernel.

Each broken variant below overrides one kernel path of upstream the way a
buggy patch would; the program is the smallest one that exposes it.
"""

from fuzz.program.program import Mapping
from model.oracles.errors import VM_BUG_ON
from model.kernel import Kernel
from model.locks import SpinLock
from tests.helpers import anon, op, prog, run


def check(outcome, oracle, **objects):
    assert outcome.verdict == "violation", outcome.error or outcome.trace.render_text()
    v = outcome.violation
    assert v.oracle == oracle, str(v)
    for k, want in objects.items():
        assert v.objects.get(k) == want, f"{k}: {v.objects}"
    assert v.step is not None and 0 <= v.step < len(outcome.trace.steps)
    return v


# -- oracle 1: writable => exclusive ------------------------------------------------
class ForkLeavesParentWritable(Kernel):
    """copy_present_ptes forgets to write-protect the parent's PTE."""

    def _copy_present_ptes(self, dst_vma, src_vma, dst_p, src_p, pte, addr):
        self.set_pte_at(dst_vma.vm_mm, addr, dst_p, pte._copy(write=False))


def test_writable_pte_to_shared_page():
    p = prog([anon(0)], (0, [op("fork", 1)]))
    check(run(p, ForkLeavesParentWritable), "writable-shared", mm=1, va=0)


class ForkSkipsTlbFlush(Kernel):
    """dup_mmap forgets its flush_tlb_mm: other CPUs keep writable entries."""

    async def flush_tlb_mm(self, mm, label="flush_tlb_mm"):
        if label == "dup_mmap:flush_tlb_mm":
            await self.sched.point(label)
            return
        await super().flush_tlb_mm(mm, label)


def test_stale_writable_tlb_entry():
    # thread 1 caches a writable translation, thread 0 forks
    p = prog([anon(0)], (0, [op("wait", 0), op("fork", 1)]), (0, [op("write", 0), op("signal", 0),
                                                                   op("wait", 1)]),
             (1, [op("signal", 1)]))
    check(run(p, ForkSkipsTlbFlush), "writable-shared", mm=1, va=0)


def test_foll_write_reference_to_page_cache_page():
    class ForceWritesAnything(Kernel):
        async def follow_page_pte(self, vma, address, flags):
            from model.flags import FOLL_WRITE
            return await super().follow_page_pte(vma, address, flags & ~FOLL_WRITE)
    p = prog([Mapping(0, 1, "file", "r", populate="read")], (0, [op("procmem", 0, 0)]))
    check(run(p, ForceWritesAnything), "writable-shared", mm=1, va=0)


# -- oracle 2: pin coherence ----------------------------------------------------------
class NoEarlyCowOfPinnedPages(Kernel):
    """fork shares a pinned page instead of copying it (before v5.9)."""

    def folio_needs_cow_for_dma(self, vma, folio):
        return False


def test_pin_incoherent_after_fork():
    p = prog([anon(0)], (0, [op("pin", 0, 0, "rw", "slow", "longterm"), op("fork", 1),
                             op("write", 0), op("devread", 0)]))
    v = check(run(p, NoEarlyCowOfPinnedPages), "pin-coherence", pid=0, va=0, pin=0)
    assert "pin #0" in v.message


# -- oracle 3: isolation, fork snapshot, lost writes ---------------------------------
class ReuseByMapcount(Kernel):
    """do_wp_page reuses a page mapped once, whatever holds references to it (pre-5.8)."""

    def wp_can_reuse_anon_folio(self, folio, vma):
        return folio.mapcount == 1


CVE_2020_29374 = prog([anon(0)],
                      (0, [op("fork", 1), op("wait", 0), op("write", 0), op("signal", 1)]),
                      (1, [op("vmsplice", 0), op("munmap", 0, 1), op("signal", 0), op("wait", 1),
                           op("piperead")]))


def test_writable_page_referenced_by_another_process():
    # cow.c case 3: oracle 1 sees the parent map the page writable while the child's
    # pipe still references it
    check(run(CVE_2020_29374, ReuseByMapcount), "writable-shared", mm=1, va=0, pfn=5)


def test_isolation_breach_through_vmsplice():
    # the same bug seen by oracle 3 alone: the child's pipe returns the parent's write
    class Oracle3Only(ReuseByMapcount):
        def check_writable_pte(self, mm, va, pmd, pte):
            pass
    check(run(CVE_2020_29374, Oracle3Only), "isolation", pid=1, va=0)


class CopyForgetsData(Kernel):
    """copy_present_page hands the child a zeroed page instead of a copy."""

    def copy_present_page(self, dst_vma, src_vma, dst_p, src_p, addr, prealloc, folio):
        if prealloc is not None:
            prealloc.data = 0
            folio = type(folio)(0, "anon", 0)
            return super().copy_present_page(dst_vma, src_vma, dst_p, src_p, addr, prealloc,
                                             folio)
        return super().copy_present_page(dst_vma, src_vma, dst_p, src_p, addr, prealloc, folio)


def test_fork_snapshot():
    p = prog([anon(0)], (0, [op("pin", 0, 0, "rw", "fast", "longterm"), op("fork", 1)]))
    check(run(p, CopyForgetsData), "fork-snapshot", pid=1, va=0)


class SwapinReadsZeroes(Kernel):
    """Swap-in allocates the page but never reads the slot: the last store is lost."""

    def end_swap_bio_read(self, folio):
        super().end_swap_bio_read(folio)
        folio.data = 0


def test_lost_write():
    p = prog([anon(0)], (0, [op("write", 0), op("pageout", 0, 1), op("read", 0)]))
    check(run(p, SwapinReadsZeroes), "lost-write", pid=0, va=0)


# -- oracle 4: accounting and use-after-free --------------------------------------------
class ZapKeepsMapcount(Kernel):
    """zap_pte_range clears PTEs without dropping the mapcount."""

    def folio_remove_rmap_pte(self, folio, vma):
        pass


def test_accounting_mapcount():
    p = prog([anon(0)], (0, [op("dontneed", 0, 1)]))
    v = check(run(p, ZapKeepsMapcount), "accounting")
    assert "mapcount" in v.message


class LeakyUnpin(Kernel):
    """unpin forgets to drop the pin's references."""

    def unpin_user_page(self, folio):
        pass


def test_accounting_leak_at_exit():
    p = prog([anon(0)], (0, [op("pin", 0, 0, "rw", "slow", "longterm"), op("unpin", 0)]))
    v = check(run(p, LeakyUnpin), "accounting")
    assert "leaked" in v.message


class FreeBeforeFlush(Kernel):
    """The mmu_gather frees pages before flushing the TLB."""

    async def tlb_flush_mmu(self, tlb, label="tlb_flush_mmu"):
        pages, tlb.pages = tlb.pages, []
        for folio in pages:
            self.folio_put(folio)
        await super().tlb_flush_mmu(tlb, label)


def test_use_after_free_through_stale_tlb():
    p = prog([anon(0)], (0, [op("write", 0), op("dontneed", 0, 1)]))
    check(run(p, FreeBeforeFlush), "use-after-free", mm=1, va=0)


# -- oracle 5: VM_BUG_ON, deadlock, livelock, model errors ----------------------------
class ForkKeepsExclusive(Kernel):
    """folio_try_dup_anon_rmap_pte duplicates without clearing PageAnonExclusive."""

    def folio_try_dup_anon_rmap_pte(self, folio, dst_vma, src_vma):
        self.folio_mapcount_add(folio, 1)
        return 0


def test_vm_bug_on():
    p = prog([anon(0)], (0, [op("fork", 1)]))
    v = check(run(p, ForkKeepsExclusive), "VM_BUG_ON")
    assert "PageAnonExclusive" in v.message


class AbbaLocks(Kernel):
    """mprotect takes a lock that faults also take, in the other order."""

    async def do_mprotect(self, mm, start, npages, prot):
        lock = self.__dict__.setdefault("extra", SpinLock("extra_lock"))
        await self.mmap_write_lock(mm, "do_mprotect_pkey:mmap_write_lock")
        await lock.lock(self.sched, "do_mprotect_pkey:extra_lock")
        lock.unlock(self.sched)
        self.mmap_write_unlock(mm)
        return 0

    async def handle_mm_fault(self, vma, address, flags):
        lock = self.__dict__.setdefault("extra", SpinLock("extra_lock"))
        await lock.lock(self.sched, "handle_mm_fault:extra_lock")
        await vma.vm_mm.mmap_lock.down_read(self.sched, "handle_mm_fault:mmap_read_lock")
        vma.vm_mm.mmap_lock.up_read(self.sched)
        lock.unlock(self.sched)
        return await super().handle_mm_fault(vma, address, flags)


def test_deadlock():
    p = prog([anon(0, populate="none")], (0, [op("write", 0)]), (0, [op("mprotect", 0, 1, "r")]),
             schedule=(0, 0, 0, 0, 1, 0, 0, 0, 1))
    outcome = run(p, AbbaLocks)
    if outcome.verdict == "ok":          # the schedule must interleave the two paths
        for k in range(40):
            outcome = run(p.with_schedule((0,) * k + (1,) + (0,) * 3 + (1,)), AbbaLocks)
            if outcome.verdict != "ok":
                break
    v = check(outcome, "deadlock")
    assert "blocked" in v.message


class NeverFixesFault(Kernel):
    """The write fault handler returns without changing anything: the CPU retries."""

    async def handle_mm_fault(self, vma, address, flags):
        await self.sched.point("handle_mm_fault:nothing")
        return 0


def test_livelock():
    p = prog([anon(0, populate="none")], (0, [op("write", 0)]))
    v = check(run(p, NeverFixesFault, max_steps=300), "livelock")
    assert "300" in v.message


class Crashes(Kernel):
    async def op_read(self, thread, va):
        raise ZeroDivisionError("model bug")


def test_model_error_is_not_a_finding():
    p = prog([anon(0)], (0, [op("read", 0)]))
    outcome = run(p, Crashes)
    assert outcome.verdict == "model-error"
    assert outcome.violation is None
    assert "ZeroDivisionError" in outcome.error


def test_vm_bug_on_helper():
    from model.oracles.errors import KernelBug
    try:
        VM_BUG_ON(True, "x", pfn=3)
    except KernelBug as e:
        assert e.objects == {"pfn": 3}
    else:
        raise AssertionError("VM_BUG_ON(True) did not raise")
