"""The v7.0 mechanisms behind mremap, MADV_DONTFORK / MADV_WIPEONFORK, munmap's detached
VMAs, swap-in and pageout, and zap_pte_range's ptl break: each shown in a trace, and each
caught on a design that gets it wrong (tests/designs.py) -- where the model without the
mechanism finds nothing."""

from __future__ import annotations

import re

import pytest

from fuzz.runtime.executor import execute
from fuzz.triage.explore import exploration, explore
from model.kernel import Kernel
from model.variants import get_variant
from tests import designs
from tests.helpers import changes, labels, program

RELAXED = get_variant("cowpte-relaxed")
V4 = get_variant("cowpte-v4")




def results(outcome) -> list:
    return [e[2] for s in outcome.trace.steps for e in s.events if e[0] == "ret"]


def some_schedule(prog, design, bound, wanted):
    """The first run within ``bound`` preemptions for which ``wanted(outcome)`` holds."""
    for _, outcome in exploration(prog, bound, lambda p, c: execute(p, design, c)):
        assert not outcome.failed, outcome.trace.verdict
        if wanted(outcome):
            return outcome
    return None


# -- mremap -----------------------------------------------------------------------------------
def test_mremap_moves_the_ptes_and_flushes_the_old_range():
    outcome = execute(program("thread 0\n  mremap 0 2 5\n  read 5\n  read 6\n",
                              "map 0 2 anon rw populate=write\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    moved = changes(outcome, "move_ptes:ptep_get")
    assert "t1.pte[0] pfn5:WDS->-" in moved and "t2.pte[5] -->pfn5:WDS" in moved
    assert "P0.T0.tlb[0] pfn5:WD->-" in changes(outcome, "move_ptes:flush_tlb_range")
    # the values written at va 0 and 1 before the move, read at 5 and 6
    assert [r.split(" ")[0] for r in results(outcome)[1:]] == ["v5(P0@0", "v6(P0@1"]


def test_mremap_of_a_whole_table_moves_the_pmd():
    outcome = execute(program("thread 0\n  mremap 0 4 8\n  read 9\n",
                              "map 0 4 anon rw populate=write\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    moved = changes(outcome, "move_normal_pmd:pmd_lock")
    assert {"mm1.pmd[0] t1->-", "mm1.pmd[2] -->t1"} <= set(moved)
    assert "move_ptes:ptep_get" not in labels(outcome)


def test_mremap_breaks_a_shared_table_first():
    """cowpte-relaxed: the child's mremap of a table it shares with its parent breaks the
    table before moving it; the parent keeps its entries."""
    race = program("thread 0\n  fork 1\n  wait 0\n  read 1\nthread 1\n  mremap 0 4 8\n"
                   "  read 9\n  signal 0\n", "map 0 4 anon rw populate=write\n")
    outcome = execute(race, RELAXED)
    assert not outcome.failed, outcome.trace.verdict
    seq = labels(outcome)
    assert seq.index("break_cow_pte:pmd_lock") < seq.index("move_normal_pmd:pmd_lock")
    child_read, parent_read = results(outcome)[2], results(outcome)[-1]
    assert child_read.startswith("v6(P0@1") and parent_read.startswith("v6(P0@1")


def test_an_mremap_that_does_not_flush_the_old_range_is_caught():
    race = program("thread 0\n  mremap 0 1 4\n  write 0\n  read 4\n",
                   "map 0 2 anon rw populate=write\n")
    found = explore(race, designs.MremapWithoutFlush, bound=0)
    assert found.failure is not None and found.failure.oracle == "writable-shared"
    assert explore(race, Kernel, bound=2).failure is None


def test_mremap_moves_ptes_while_reclaim_walks_the_rmap():
    """copy_vma links the new VMA after the old one in rmap order, so move_ptes takes no
    rmap lock: reclaim's walk and the move interleave, and nothing goes wrong."""
    race = program("thread 0\n  mremap 0 1 4\n  read 4\nthread 0\n  reclaim 0\n",
                   "map 0 1 anon rw populate=write\n")

    def moved_during_the_walk(outcome):
        seq = labels(outcome)
        if "move_ptes:ptep_get" not in seq or "try_to_unmap:folio_lock_anon_vma_read" not in seq:
            return False
        walk = seq.index("try_to_unmap:folio_lock_anon_vma_read")
        return walk < seq.index("move_ptes:ptep_get") < seq.index(
            "page_vma_mapped_walk:pte_offset_map_lock", walk)

    assert some_schedule(race, Kernel, 2, moved_during_the_walk) is not None
    assert "move_ptes:take_rmap_locks" not in labels(execute(race, Kernel))
    assert explore(race, Kernel, bound=2).failure is None


def test_reclaim_finds_a_pte_fork_copies_while_the_walk_is_under_way():
    """The rmap walk looks at each PTE when it gets there: a child's PTE copied after the
    walk started, before it reached the child's VMA, is unmapped too (the walk used to
    list the PTEs when it started and left the child's page mapped)."""
    race = program("thread 0\n  fork 1\nthread 0\n  reclaim 0\n",
                   "map 0 1 anon rw populate=write\n")

    def copied_during_the_walk(outcome):
        seq = labels(outcome)
        if "try_to_unmap:folio_lock_anon_vma_read" not in seq:
            return False
        walk = seq.index("try_to_unmap:folio_lock_anon_vma_read")
        copied = [i for i, label in enumerate(seq) if label.startswith("copy_present_ptes")]
        return (bool(copied) and walk < copied[0]
                and seq.count("try_to_unmap_one:folio_try_share_anon_rmap_pte") == 2)

    found = some_schedule(race, Kernel, 2, copied_during_the_walk)
    assert found is not None
    assert "reclaim = 0" in found.trace.render_text()


def test_fork_links_the_child_vma_only_between_rmap_walks():
    """anon_vma_fork takes the anon_vma lock for write: a child VMA is never linked while
    reclaim's walk holds it for read -- fork waits for the walk -- and nothing goes wrong."""
    race = program("thread 0\n  fork 1\nthread 0\n  reclaim 0\n",
                   "map 0 1 anon rw populate=write\n")

    def steps_with(outcome, text):
        return [i for i, step in enumerate(outcome.trace.steps)
                if any(text in f"{o}.{f} {a}->{b}" for o, f, a, b in outcome.trace.changes_of(step))]

    waited = 0
    for _, outcome in exploration(race, 2, lambda p, c: execute(p, Kernel, c)):
        assert not outcome.failed, outcome.trace.verdict
        taken, dropped = steps_with(outcome, "rmap_lock.readers 0->1"), steps_with(
            outcome, "rmap_lock.readers 1->0")
        linked = steps_with(outcome, "mm2.vma[0-1] -->")
        assert linked and not any(t < linked[0] < d for t, d in zip(taken, dropped))
        waited += "blocks on dup_mmap:anon_vma_fork" in outcome.trace.render_text()
    assert waited


# -- MADV_DONTFORK, MADV_WIPEONFORK -------------------------------------------------------------
FORK_FLAGS = program("thread 0\n  dontfork 2 1\n  wipeonfork 1 1\n  fork 1\nthread 1\n  read 0\n"
                     "  read 1\n  read 2\n", "map 0 3 anon rw populate=write\n")


def test_dontfork_leaves_the_range_out_and_wipeonfork_gives_it_empty():
    outcome = execute(FORK_FLAGS, Kernel)
    assert not outcome.failed, outcome.trace.verdict
    got = results(outcome)[-3:]
    assert got[0].startswith("v5(P0@0") and got[1:] == ["v0(zero)", "SIGSEGV"]
    child_vmas = [f"{f}:{b}" for s in outcome.trace.steps
                  for o, f, a, b in outcome.trace.changes_of(s) if o == "mm2" and a == "-"]
    child_vmas = [v for v in child_vmas if v.startswith("vma")]
    assert [v.split(":")[0] for v in child_vmas] == ["vma[0-1]", "vma[1-2]"]   # no vma[2-3]
    assert "VM_WIPEONFORK" in child_vmas[1]


def test_a_relaxed_fork_rolls_back_on_a_dontfork_or_wipeonfork_neighbour():
    outcome = execute(FORK_FLAGS, RELAXED)
    assert not outcome.failed, outcome.trace.verdict
    assert "recover_pte_range:restore_pte" in labels(outcome)


def test_v4_recovers_with_an_uninitialised_ptl_after_dontfork():
    """v4's VM_DONTCOPY -> recover_pte_range path, dead code before MADV_DONTFORK."""
    outcome = execute(program("thread 0\n  dontfork 0 1\n  fork 1\n",
                              "map 0 2 anon rw populate=write\n"), V4)
    assert outcome.oracle == "VM_BUG_ON"
    assert "uninitialised lock" in str(outcome.violation)


@pytest.mark.parametrize("design, oracle", [
    (designs.RelaxedSharesWipeOnFork, "fork-snapshot"), (V4, "fork-snapshot")])
def test_sharing_a_table_with_a_wipeonfork_range_is_caught(design, oracle):
    race = program("thread 0\n  wipeonfork 1 1\n  fork 1\nthread 1\n  read 1\n",
                   "map 0 2 anon rw populate=write\n")
    found = explore(race, design, bound=0)
    assert found.failure is not None and found.failure.oracle == oracle
    assert "VM_WIPEONFORK" in str(found.failure.violation)
    assert explore(race, RELAXED, bound=1).failure is None


# -- rmap reaching a VMA munmap detached ---------------------------------------------------------
MUNMAP_VS_RECLAIM = program("thread 0\n  munmap 0 2\nthread 0\n  reclaim 0\n",
                            "map 0 2 anon rw populate=write\n")


def test_reclaim_unmaps_a_page_of_a_vma_munmap_has_detached():
    def reached(outcome):
        steps = outcome.trace.steps
        detached = next((s.index for s in steps for o, f, i, a, b in s.changes
                         if f == "vma" and i == (0, 2) and b is None), None)
        swapped = next((s.index for s in steps if s.label.startswith("try_to_unmap_one")
                        for o, f, i, a, b in s.changes if f == "pte" and b is not None
                        and not b.present), None)
        return detached is not None and swapped is not None and detached < swapped
    outcome = some_schedule(MUNMAP_VS_RECLAIM, Kernel, 2, reached)
    assert outcome is not None, "no schedule where reclaim met the detached VMA"
    assert "swp1.count 1->0" in changes(outcome, "zap_pte_range:ptep_get")


def test_a_zap_that_trusts_detached_vmas_to_be_private_is_caught():
    found = explore(MUNMAP_VS_RECLAIM, designs.MunmapZapsWithoutPtl, bound=2)
    assert found.failure is not None and found.failure.oracle == "accounting"
    assert explore(MUNMAP_VS_RECLAIM, designs.MunmapZapsWithoutPtlNoDetachedRmap,
                   bound=3).failure is None, "only the rmap of detached VMAs shows it"
    assert explore(MUNMAP_VS_RECLAIM, Kernel, bound=3).failure is None


# -- swap-in ---------------------------------------------------------------------------------------
TWO_SWAPINS = program("thread 0\n  read 0\nthread 0\n  read 0\n",
                      "map 0 1 anon rw populate=swap\n")


def test_swapin_waits_on_the_folio_locked_across_the_read():
    def waited(outcome):
        return any(e[0] == "block" and e[1] in ("folio_wait_locked", "__folio_lock")
                   for s in outcome.trace.steps for e in s.events)
    outcome = some_schedule(TWO_SWAPINS, Kernel, 2, waited)
    assert outcome is not None
    read = changes(outcome, "folio_wait_locked")
    assert "pfn6.uptodate 0->1" in read and "pfn6.locked 1->0" in read


def test_a_disk_swapin_drops_the_fault_lock_until_the_read_completes():
    """swapin_readahead returns the folio locked with the disk read in flight:
    folio_lock_or_retry drops the fault lock, sleeps until the read completes and the
    fault is retried (FAULT_FLAG_TRIED, under mmap_lock), which finds the page in the
    swap cache. Meanwhile fork can copy the swap PTE (copy_nonpresent_pte clears its
    exclusive bit), and the retried fault then maps the page read-only."""
    outcome = execute(program("thread 0\n  read 0\n", "map 0 1 anon rw populate=swap\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    seq = labels(outcome)
    submit = seq.index("swap_read_folio_bdev_async:submit_bio")
    assert "vm_lock(mm1:0-1).readers 1->0" in changes(outcome, "swap_read_folio_bdev_async:submit_bio")
    assert seq.index("folio_wait_locked") > submit
    assert seq.index("lock_mm_and_find_vma:mmap_read_lock") > seq.index("folio_wait_locked")

    def forked_during_the_read(outcome):
        seq = labels(outcome)
        if "swap_read_folio_bdev_async:submit_bio" not in seq or "copy_pte_range" not in " ".join(seq):
            return False
        submit = seq.index("swap_read_folio_bdev_async:submit_bio")
        copied = next(i for i, label in enumerate(seq) if label.startswith("copy_pte_range"))
        return submit < copied < seq.index("folio_wait_locked") and \
            any(c.startswith("t1.pte[0] swp1->pfn") for c in changes(outcome, "do_swap_page:pte_offset_map_lock"))
    race = program("thread 0\n  read 0\nthread 0\n  fork 1\n", "map 0 1 anon rw populate=swap\n")
    assert some_schedule(race, Kernel, 2, forked_during_the_read) is not None


def test_a_read_fault_frees_the_swap_cache_on_zram():
    outcome = execute(program("thread 0\n  read 0\n", "map 0 1 anon rw populate=swap\n",
                              "swap zram\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    assert "swap_read_folio_bdev_sync:submit_bio_wait" in labels(outcome)
    mapped = changes(outcome, "do_swap_page:pte_offset_map_lock")
    assert "pfn6.swapcache swp1->0" in mapped and "swp1.freed 0->1" in mapped


def test_a_read_fault_frees_the_swap_cache_only_when_swap_is_half_full_on_disk():
    def freed(npages):
        prog = program("thread 0\n  read 0\n", f"map 0 {npages} anon rw populate=swap\n")
        outcome = execute(prog, Kernel)
        assert not outcome.failed, outcome.trace.verdict
        return any(".swapcache swp" in c and c.endswith("->0")
                   for c in changes(outcome, "do_swap_page:pte_offset_map_lock"))
    assert not freed(1)
    assert freed(3)                       # vm_swap_full: 3 of the 4 slots in use


def test_a_swapin_read_that_unlocks_before_its_data_is_there_is_caught():
    found = explore(TWO_SWAPINS, designs.SwapReadUnlocksEarly, bound=1)
    assert found.failure is not None and found.failure.oracle == "lost-write"
    assert explore(TWO_SWAPINS, Kernel, bound=3).failure is None


# -- pageout under writeback -----------------------------------------------------------------------
PAGEOUT_VS_READ = program("thread 0\n  pageout 0 1\nthread 0\n  read 0\n", header="swap zram\n")


def test_a_fault_during_writeback_on_zram_maps_the_page_read_only():
    def during(outcome):
        return any("pfn5.writeback" in c for c in changes(
            outcome, "swap_writepage_bdev_sync:submit_bio_wait")) and \
            any("t1.pte[0] swp1:X->pfn5:S" in c for c in
                changes(outcome, "do_swap_page:pte_offset_map_lock"))
    outcome = some_schedule(PAGEOUT_VS_READ, Kernel, 2, during)
    assert outcome is not None, "no fault during writeback: SWP_STABLE_WRITES keeps it R/O"


def test_freeing_the_swap_cache_under_writeback_is_caught():
    found = explore(PAGEOUT_VS_READ, designs.FreeSwapUnderWriteback, bound=1)
    assert found.failure is not None and found.failure.oracle == "use-after-free"
    assert explore(PAGEOUT_VS_READ, Kernel, bound=3).failure is None


# -- zap_pte_range dropping the ptl mid-table ----------------------------------------------------------
DONTNEED_VS_FAULT = program("thread 0\n  dontneed 0 4\nthread 0\n  write 0\n",
                            "map 0 4 anon rw populate=write\n")


def test_zap_drops_the_ptl_on_need_resched_and_rechecks_before_freeing_the_table():
    def refilled(outcome):
        seq = labels(outcome)
        return "zap_pte_range:cond_resched" in seq and "zap_pte_table_if_empty:pmd_lock" in seq
    outcome = some_schedule(DONTNEED_VS_FAULT, Kernel, 2, refilled)
    assert outcome is not None


def test_reclaiming_a_table_refilled_during_the_break_is_caught():
    found = explore(DONTNEED_VS_FAULT, designs.PtReclaimWithoutRecheck, bound=2)
    assert found.failure is not None and found.failure.oracle == "accounting"
    assert explore(DONTNEED_VS_FAULT, designs.PtReclaimWithoutRecheckNoBreak,
                   bound=3).failure is None, "only the ptl break shows it"
    assert explore(DONTNEED_VS_FAULT, Kernel, bound=3).failure is None


# -- what the mmu_gather frees, and the swap cache when swap fills ----------------------------------
def test_a_zap_drops_an_unmapped_folio_from_the_swap_cache():
    """free_pages_and_swap_cache: a page a read fault brought back from disk stays in the
    swap cache; MADV_DONTNEED's gather drops it from the cache before its own put, so the
    page and its slot are freed with the flush."""
    outcome = execute(program("thread 0\n  read 0\n  dontneed 0 1\n",
                              "map 0 1 anon rw populate=swap\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    finished = changes(outcome, "tlb_finish_mmu")
    assert "pfn6.swapcache swp1->0" in finished and "swp1.freed 0->1" in finished
    assert "pfn6.freed 0->1" in finished


def test_the_last_swap_pte_frees_even_a_mapped_cache_folio_when_swap_is_half_full():
    """__try_to_reclaim_swap with TTRS_FULL: the parent's munmap drops the last swap PTE
    of a page its child swapped in and still maps; with more than half of swap in use the
    page leaves the swap cache (and the slot is freed) even though it is mapped."""
    def dropped(npages):
        prog = program("thread 0\n  fork 1\n  wait 0\n  munmap 0 1\n  signal 1\n"
                       "thread 1\n  read 0\n  signal 0\n  wait 1\n",
                       f"map 0 {npages} anon rw populate=swap\n")
        outcome = execute(prog, Kernel)
        assert not outcome.failed, outcome.trace.verdict
        zapped = changes(outcome, "zap_pte_range:ptep_get")
        return "swp1.freed 0->1" in zapped[:zapped.index("t1.pte[0] swp1->-")]
    assert not dropped(1)
    assert dropped(3)                     # vm_swap_full: 3 of the 4 slots in use


# -- mprotect ----------------------------------------------------------------------------------------
def all_changes(outcome) -> list[str]:
    trace = outcome.trace
    return [f"{o}.{f} {a}->{b}" for s in trace.steps for o, f, a, b in trace.changes_of(s)]


def test_mprotect_leaves_a_vma_whose_flags_stay_whole():
    """mprotect_fixup returns before vma_modify_flags when the flags do not change: no
    split, no VMA write lock."""
    same = execute(program("thread 0\n  mprotect 1 1 rw\n", "map 0 3 anon rw populate=write\n"),
                   Kernel)
    assert not same.failed, same.trace.verdict
    assert not [c for c in all_changes(same) if c.endswith("->split") or ".vm_lock_seq" in c]
    other = execute(program("thread 0\n  mprotect 1 1 r\n", "map 0 3 anon rw populate=write\n"),
                    Kernel)
    assert len([c for c in all_changes(other) if c.endswith("->split")]) == 2


def test_mprotect_changes_the_vmas_before_a_hole_then_fails():
    """do_mprotect_pkey walks the VMAs in order and stops at a hole with -ENOMEM: the VMA
    before it has changed, the one after it has not."""
    outcome = execute(program("thread 0\n  mprotect 0 3 r\n  write 0\n  write 2\n",
                              "map 0 1 anon rw populate=write\nmap 2 1 anon rw populate=write\n"),
                      Kernel)
    assert not outcome.failed, outcome.trace.verdict
    got = results(outcome)
    assert got[0] == -12 and got[1] == "SIGSEGV" and str(got[2]).startswith("v")


# -- MADV_DONTNEED's gather outlives its VMA lock --------------------------------------------------
DONTNEED_VS_MUNMAP = program("thread 0\n  dontneed 0 1\nthread 0\n  munmap 0 1\n")


def test_dontneed_drops_the_vma_lock_before_its_flush():
    """madvise_walk_vmas drops the per-VMA lock before madvise_finish_tlb: munmap
    write-locks the VMA between DONTNEED's zap and its flush, and its own tlb_finish_mmu,
    seeing the other gather pending (mm_tlb_flush_nested), flushes everything."""
    def between(outcome):
        trace = outcome.trace
        steps = [(s.tid, s.label, " ".join(f"{o}.{f} {a}->{b}" for o, f, a, b in trace.changes_of(s)))
                 for s in trace.steps]
        zap = next(i for i, (_, _, text) in enumerate(steps) if re.search(r"t1\.pte\[0\] pfn5\S*->-", text))
        zapper = steps[zap][0]
        finish = next(i for i in range(zap, len(steps))
                      if steps[i][0] == zapper and steps[i][1] == "tlb_finish_mmu")
        others = [text for tid, _, text in steps[zap:finish] if tid != zapper]
        return any(".vm_lock_seq" in t for t in others) and \
            any("tlb_flush_pending 2->1" in t for t in others)
    assert some_schedule(DONTNEED_VS_MUNMAP, Kernel, 2, between) is not None


def test_pageout_keeps_a_gather_open_that_a_concurrent_zap_sees():
    """madvise_pageout holds an mmu_gather for the whole call: a MADV_DONTNEED finishing
    meanwhile sees two gathers pending (mm_tlb_flush_nested) and flushes everything."""
    race = program("thread 0\n  pageout 0 1\nthread 0\n  dontneed 1 1\n",
                   "map 0 2 anon rw populate=write\n")

    def nested(outcome):
        return any("tlb_flush_pending 2->1" in c for c in changes(outcome, "tlb_finish_mmu"))
    assert some_schedule(race, Kernel, 2, nested) is not None


def test_reclaim_that_gives_up_frees_the_swap_cache_when_swap_is_half_full():
    """shrink_folio_list's activate_locked: reclaim of a pinned page still in the swap
    cache gives up (try_to_unmap_one keeps a maybe-pinned exclusive page mapped); with
    more than half of swap in use, the page leaves the swap cache as it is kept."""
    def dropped(swapped_out):
        reclaims = "".join(f"  reclaim {va}\n" for va in range(1, 1 + swapped_out))
        prog = program(f"thread 0\n  read 0\n{reclaims}  pin 0 0 rw fast longterm\n  reclaim 0\n",
                       "map 0 1 anon rw populate=swap\nmap 1 2 anon rw populate=write\n")
        outcome = execute(prog, Kernel)
        assert not outcome.failed, outcome.trace.verdict
        seq = labels(outcome)
        last = max(i for i, label in enumerate(seq) if label == "shrink_inactive_list:folio_isolate_lru")
        tail = [f"{o}.{f} {a}->{b}" for s in outcome.trace.steps[last:seq.index("exit_mmap:mmap_read_lock")]
                for o, f, a, b in outcome.trace.changes_of(s)]
        return any(c.endswith(".swapcache swp1->0") for c in tail)
    assert not dropped(0)
    assert dropped(2)                     # vm_swap_full: 3 of the 4 slots in use


# -- reclaim's deferred TLB flush ------------------------------------------------------------------
def test_each_reclaimer_flushes_its_own_batch():
    """current->tlb_ubc: parent and child each reclaim their own page; a flush before
    writeback flushes the CPUs of the mm its own task batched, not the other's."""
    race = program("thread 0\n  fork 1\n  wait 0\n  read 0\n  reclaim 0\n"
                   "thread 1\n  write 0\n  signal 0\n  reclaim 0\n")

    def flushed_alone(outcome):
        cleared = set()
        for step in outcome.trace.steps:
            if step.label == "page_vma_mapped_walk:pte_offset_map_lock":
                cleared.add(step.tid)
            elif step.label == "shrink_folio_list:try_to_unmap_flush_dirty":
                if len(cleared) < 2:
                    return False          # not both batched before the first flush
                cpus = {o.split(".")[0] for o, f, a, b in outcome.trace.changes_of(step) if f == "tlb"}
                return len(cpus) == 1
        return False
    assert some_schedule(race, Kernel, 2, flushed_alone) is not None


def test_a_batch_of_clean_entries_is_not_flushed_before_writeback():
    """try_to_unmap_flush_dirty flushes only a batch holding a dirty entry: a page mapped
    clean (read back from zram, its swap cache dropped) goes to writeback unflushed, and
    the batch is flushed before the page is freed."""
    outcome = execute(program("thread 0\n  read 0\n  reclaim 0\n", "map 0 1 anon rw populate=swap\n",
                              "swap zram\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    seq = labels(outcome)
    start = seq.index("shrink_inactive_list:folio_isolate_lru", seq.index("do_swap_page:pte_offset_map_lock"))
    assert "shrink_folio_list:try_to_unmap_flush_dirty" not in seq[start:]
    assert "swap_writepage_bdev_sync:submit_bio_wait" in seq[start:]
    assert "try_to_unmap_flush" in seq[start:]


# -- swap entries come back ---------------------------------------------------------------------------
def test_a_freed_swap_entry_is_handed_out_again():
    """Slots go lowest free first: a page read back from zram (which frees its slot) and
    swapped out again gets the same entry, as the kernel's allocator hands freed offsets
    out again; pte_same and folio_matches_swap_entry are what keep the two lives apart."""
    outcome = execute(program("thread 0\n  read 0\n  reclaim 0\n  read 0\n",
                              "map 0 1 anon rw populate=swap\n", "swap zram\n"), Kernel)
    assert not outcome.failed, outcome.trace.verdict
    trace = outcome.trace
    allocs = [o for s in trace.steps for o, f, a, b in trace.changes_of(s) if f == "alloc"
              and o.startswith("swp")]
    assert allocs == ["swp1", "swp1"]
    assert results(outcome)[-1] == results(outcome)[0]


ABA_SWAPIN = program("thread 0\n  read 0\nthread 0\n  read 0\n  reclaim 0\n",
                     "map 0 1 anon rw populate=swap\n", "swap zram\n")


def test_a_fault_whose_swap_entry_came_back_maps_what_it_now_names():
    """A fault reads the swap PTE and sleeps allocating its folio; meanwhile another
    thread reads the page back (zram frees the slot) and swaps it out again to the same
    entry. The fault's pte_same passes on the entry's second life, and it maps the page
    the entry now names -- the latest contents -- and nothing goes wrong."""
    def aba(outcome):
        steps = outcome.trace.steps
        allocs = [i for i, s in enumerate(steps)
                  if any(o == "swp1" and f == "alloc" for o, f, a, b in outcome.trace.changes_of(s))]
        if len(allocs) < 2:
            return False
        for i, step in enumerate(steps):          # a fault: its lockless read, then its ptl
            if step.label != "handle_pte_fault:ptep_get_lockless" or i > allocs[1]:
                continue
            later = [j for j in range(i + 1, len(steps)) if steps[j].tid == step.tid]
            ptl = next((j for j in later if steps[j].label == "do_swap_page:pte_offset_map_lock"), None)
            reread = next((j for j in later if steps[j].label == step.label), len(steps))
            if ptl is not None and allocs[1] < ptl < reread and any(
                    o == "t1" and f == "pte[0]" and str(a).startswith("swp1")
                    for o, f, a, b in outcome.trace.changes_of(steps[ptl])):
                return True
        return False
    assert some_schedule(ABA_SWAPIN, Kernel, 2, aba) is not None


@pytest.mark.parametrize("op", ["dontneed", "pageout"])
def test_madvise_over_a_hole_does_the_rest_and_fails(op):
    """madvise_walk_vmas skips an unmapped part of the range and returns -ENOMEM once the
    mapped parts are done."""
    outcome = execute(program(f"thread 0\n  {op} 0 3\n  read 2\n",
                              "map 0 1 anon rw populate=write\nmap 2 1 anon rw populate=write\n"),
                      Kernel)
    assert not outcome.failed, outcome.trace.verdict
    got = results(outcome)
    assert got[0] == -12
    if op == "dontneed":
        assert got[1] == "v0(zero)"                  # page 2, past the hole, was zapped
    else:
        assert any(c.startswith("t1.pte[2]") and "->swp" in c for c in all_changes(outcome))
