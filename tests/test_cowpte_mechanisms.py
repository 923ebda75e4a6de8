"""The mechanisms the COW PTE designs are risky in, each shown in a trace and each caught
on a design that gets it wrong (tests/designs.py): the relaxed fork's in-place preparation
and its roll-back, reclaim meeting a shared table (both choices), and the per-CPU
paging-structure caches."""

from __future__ import annotations

import pytest

from fuzz.runtime.executor import execute
from fuzz.triage.explore import exploration, explore
from model.kernel import Kernel
from model.variants import get_variant
from tests import designs
from tests.helpers import changes, labels, program
from tests.cowc import cowc_scenarios

RELAXED = get_variant("cowpte-relaxed")
SHARED_UNMAP = get_variant("cowpte-relaxed-shared-unmap")




# -- the relaxed fork: prepare in place, share; roll back on an unshareable page -------------
FORK = program("thread 0\n  fork 1\n  wait 0\nthread 1\n  signal 0\n")
#: fork meets a maybe-pinned page after preparing another one: it must roll back
PINNED_SECOND = program("thread 0\n  pin 0 1 rw fast longterm\n  fork 1\n  write 0\n"
                        "  devread 0\n  unpin 0\n", "map 0 2 anon rw populate=write\n")


def test_relaxed_fork_prepares_the_parents_table_in_place_then_shares_it():
    outcome = execute(FORK, RELAXED)
    assert not outcome.failed, outcome.trace.verdict
    prepared = changes(outcome, "copy_cow_pte_range:ptep_get")
    assert {"pfn5.mapcount 1->2", "pfn5.PageAnonExclusive 1->0", "pfn5._refcount 1->2"} \
        <= set(prepared)
    assert "t1.pte[0] pfn5:WDS->pfn5:DS" in changes(outcome, "copy_present_ptes:__copy_present_ptes")
    assert "mm1.pmd[0] t1->t1:RO" in changes(outcome, "copy_cow_pte_range:pmd_lock(src)")
    assert "mm2.pmd[0] -->t1:RO" in changes(outcome, "copy_cow_pte_range:pmd_lock(dst)")
    assert "copy_pte_range:ptep_get" not in labels(outcome), "no copy for the child"


def test_relaxed_fork_rolls_the_preparation_back_on_a_maybe_pinned_page():
    outcome = execute(PINNED_SECOND, RELAXED)
    assert not outcome.failed, outcome.trace.verdict
    seq = labels(outcome)
    first = seq.index("copy_cow_pte_range:ptep_get")
    undo = seq.index("recover_pte_range:restore_pte")
    assert first < undo < seq.index("copy_pte_range:ptep_get")
    assert set(changes(outcome, "recover_pte_range:restore_pte")) >= {
        "pfn5.mapcount 2->1", "pfn5.PageAnonExclusive 0->1", "pfn5._refcount 2->1",
        "t1.pte[0] pfn5:DS->pfn5:WDS"}
    # the ordinary copy path then gives the child a copy of the pinned page
    assert "t2.pte[1] -->pfn7:WDS" in changes(outcome, "copy_pte_range:ptep_get")


def test_a_roll_back_that_keeps_the_childs_mapcount_is_caught():
    outcome = execute(PINNED_SECOND, designs.RelaxedRecoverKeepsRmap)
    assert outcome.oracle == "writable-shared", outcome.trace.verdict
    assert "mapped 2 times" in str(outcome.violation)


def test_a_roll_back_that_keeps_the_write_protect_is_harmless():
    """Only the counts must be rolled back: the copy path write-protects the entry and
    clears PageAnonExclusive again."""
    assert not execute(PINNED_SECOND, designs.RelaxedRecoverKeepsWrprotect).failed
    race = program("thread 0\n  pin 0 1 rw fast longterm\n  fork 1\n  write 0\n"
                   "thread 0\n  write 0\n  read 1\n", "map 0 2 anon rw populate=write\n")
    assert explore(race, designs.RelaxedRecoverKeepsWrprotect, bound=1).failure is None


# -- reclaim meeting a shared table --------------------------------------------------------------
RECLAIM_IN_CHILD = program("thread 0\n  fork 1\n  wait 0\n  read 0\nthread 1\n  reclaim 0\n"
                           "  signal 0\n  read 0\n")


def test_relaxed_reclaim_breaks_the_shared_table_from_the_rmap_walk():
    outcome = execute(RECLAIM_IN_CHILD, RELAXED)
    assert not outcome.failed, outcome.trace.verdict
    assert labels(outcome).count("try_to_unmap_one:break_cow_pte") == 2
    broke = changes(outcome, "break_cow_pte:pmd_lock")
    assert "mm1.pmd[0] t1:RO->t2" in broke          # the parent gets a copy
    assert "mm2.pmd[0] t1:RO->t1" in broke          # the child, last user, keeps the table
    assert "t2.pte[0] -->swp1" in changes(outcome, "try_to_unmap_one:folio_try_share_anon_rmap_pte")


def test_shared_unmap_reclaim_changes_the_entry_once_for_every_sharer():
    outcome = execute(RECLAIM_IN_CHILD, SHARED_UNMAP)
    assert not outcome.failed, outcome.trace.verdict
    unmap = changes(outcome, "page_vma_mapped_walk:pte_offset_map_lock(shared)")
    assert {"t1.pte[0] pfn5:DS->-", "mm1.tlb_flush_batched 0->1", "mm2.tlb_flush_batched 0->1",
            "swp1.count 0->1", "swp1.count 1->2"} <= set(unmap)
    assert {"t1.pte[0] -->swp1", "pfn5.mapcount 2->1", "pfn5.mapcount 1->0"} <= set(
        changes(outcome, "try_to_unmap_one:folio_try_share_anon_rmap_pte(shared)"))
    assert "try_to_unmap_one:break_cow_pte" not in labels(outcome)


@pytest.mark.slow
def test_a_fork_that_forgets_which_tables_it_shared_is_caught_with_reclaim():
    """The rmap walk breaks the child's table between two VMAs of it; a fork that tells a
    shared table by its read-only pmd copies the second VMA again."""
    race = program("thread 0\n  fork 1\nthread 0\n  reclaim 0\n",
                   "map 0 1 anon rw populate=write\nmap 1 1 anon rw populate=write\n")
    found = explore(race, designs.RelaxedForkSkipsReadOnly, bound=1)
    assert found.failure is not None and found.failure.oracle == "accounting"
    assert explore(race, RELAXED, bound=2).failure is None


def test_a_shared_unmap_that_flushes_one_sharer_is_caught():
    race = program("thread 0\n  fork 1\n  read 0\n  wait 0\nthread 1\n  read 0\n  reclaim 0\n"
                   "  signal 0\n")
    found = explore(race, designs.SharedUnmapFlushesOneSharer, bound=2)
    assert found.failure is not None and found.failure.oracle == "use-after-free"
    assert "TLB of P1.T0 still maps freed page" in str(found.failure.violation)
    assert explore(race, SHARED_UNMAP, bound=2).failure is None


# -- paging-structure caches --------------------------------------------------------------------
#: one thread caches the table, the other empties it with MADV_DONTNEED (PT_RECLAIM frees it)
TABLE_FREED = program("thread 0\n  read 0\n  read 1\nthread 0\n  dontneed 0 4\n",
                      "map 0 4 anon rw populate=write\n")
#: a parent thread keeps walking the table its sibling's write fault broke away from, which
#: the child then reuses
TABLE_REPLACED = program("thread 0\n  fork 1\n  read 0\n  read 0\nthread 0\n  write 0\n"
                         "thread 1\n  write 0\n")


def test_a_walk_uses_the_cached_pmd_after_the_table_is_replaced():
    """cowpte-relaxed: between the break's pmd switch and its flush, a sibling walks the old
    table through its paging-structure cache -- harmless, the flush comes before the table
    reference is dropped."""
    two_pages = program("thread 0\n  fork 1\n  read 0\n  read 1\nthread 0\n  write 0\n",
                        "map 0 2 anon rw populate=write\n")
    hits = []
    for _, outcome in exploration(two_pages, 2, lambda p, c: execute(p, RELAXED, c)):
        assert not outcome.failed, outcome.trace.verdict
        hits += [e[1] for s in outcome.trace.steps for e in s.events
                 if e[0] == "psc" and "(the pmd is t2)" in e[1]]
    assert "P0.T0 walks t1 through its cached pmd[0] t1:RO (the pmd is t2)" in hits


def test_only_flushes_with_freed_tables_drop_the_cached_pmd():
    freed = program("thread 0\n  read 0\n  signal 0\n  wait 1\nthread 0\n  wait 0\n"
                    "  dontneed 0 4\n  signal 1\n", "map 0 4 anon rw populate=write\n")
    outcome = execute(freed, Kernel)
    assert "P0.T0.psc {0:t1}->{}" in changes(outcome, "tlb_finish_mmu")   # tlb_remove_table
    kept = program("thread 0\n  read 0\n  signal 0\n  wait 1\nthread 0\n  wait 0\n"
                   "  dontneed 0 2\n  signal 1\n", "map 0 4 anon rw populate=write\n")
    outcome = execute(kept, Kernel)
    flush = changes(outcome, "tlb_finish_mmu")
    assert "P0.T0.tlb[0] pfn5:WD->-" in flush and not any(".psc" in c for c in flush)


@pytest.mark.parametrize("design, without_cache, race, oracle", [
    (designs.TableFreedBeforeFlush, designs.TableFreedBeforeFlushNoCache, TABLE_FREED,
     "use-after-free"),
    (designs.RelaxedBreakLeafFlush, designs.RelaxedBreakLeafFlushNoCache, TABLE_REPLACED,
     "lost-write"),
], ids=["table-freed-before-flush", "relaxed-break-leaf-flush"])
@pytest.mark.slow
def test_a_missing_paging_structure_flush_is_found_by_search(design, without_cache, race,
                                                             oracle):
    found = explore(race, design, bound=2)
    assert found.failure is not None and found.failure.oracle == oracle, found.proof_line()
    assert explore(race, without_cache, bound=2).failure is None, "only the cache shows it"


@pytest.mark.parametrize("variant", ["upstream", "cowpte-relaxed",
                                     "cowpte-relaxed-shared-unmap"])
@pytest.mark.slow
def test_correct_designs_flush_before_freeing_or_replacing_tables(variant):
    cls = get_variant(variant)
    for race in (TABLE_FREED, TABLE_REPLACED):
        assert explore(race, cls, bound=2).failure is None


# -- exhaustive search of the cow.c scenarios ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["upstream", "cowpte-relaxed",
                                     "cowpte-relaxed-shared-unmap"])
def test_cowc_scenarios_are_clean_under_every_schedule_with_two_preemptions(variant):
    cls = get_variant(variant)
    for sc in cowc_scenarios():
        result = explore(sc.program, cls, bound=2)
        assert result.failure is None and result.complete, (sc.name, sc.backing,
                                                              result.proof_line())
