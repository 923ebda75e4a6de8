"""The COW PTE designs: their cow.c results, the table-sharing oracles (each driven by a
deliberately broken design), and the relaxed design staying clean."""

from __future__ import annotations

import random

import pytest

from fuzz.runtime.executor import execute
from fuzz.program.generate import random_program
from tests.cowc import cowc_scenarios
from fuzz.triage.explore import explore
from fuzz.program.textcodec import parse_program
from model.kernel import Kernel
from model.variants import get_variant
from model.variants.cowpte.relaxed import CowPteRelaxed

#: cow.c cases (scenario index in tests/cowc.py, 1-based as corpus/upstream/cowc-NN)
#: each design fails, and the oracle; everything else passes
COWC_FAILURES = {
    "cowpte-relaxed": {},
    "cowpte-relaxed-shared-unmap": {},
    # case 8: no VMA maps the table below the pinned page, so recover_pte_range's loop
    # never sets src_ptl
    "cowpte-v4": {15: "VM_BUG_ON", 16: "VM_BUG_ON"},
    # mprotect not hooked (cases 2, 4: bad pmd); lazy accounting leaves the shared PTE
    # writable for GUP-fast while a pipe or pin of another process holds the page
    "cowpte-rfc2": {3: "VM_BUG_ON", 4: "VM_BUG_ON", 5: "writable-shared",
                    7: "writable-shared", 8: "VM_BUG_ON", 11: "writable-shared",
                    12: "writable-shared", 19: "writable-shared", 23: "VM_BUG_ON"},
}


def cowc_failures(variant: str) -> dict:
    cls = get_variant(variant)
    out = {}
    for i, sc in enumerate(cowc_scenarios(), 1):
        outcome = execute(sc.program, cls)
        if outcome.failed:
            out[i] = outcome.status
    return out


@pytest.mark.parametrize("variant", sorted(COWC_FAILURES))
def test_cowc_results_per_design(variant):
    assert cowc_failures(variant) == COWC_FAILURES[variant]


@pytest.mark.slow
def test_the_thread_race_is_found_by_exhaustive_search_at_two_preemptions():
    """RFC v2: GUP-fast marks a table exclusive while fork shares it (the thread's race):
    among the schedules with two preemptions, some end in the bad pmd it leads to."""
    from fuzz.triage.explore import exploration
    race = parse_program("cowfuzz 1\nmap 0 1 anon rw populate=write\nthread 0\n  fork 1\n"
                         "thread 0\n  pin 0 0 ro fast longterm\n")
    rfc2 = get_variant("cowpte-rfc2")
    hits = [o for level, o in exploration(race, 2, lambda p, c: execute(p, rfc2, c))
            if level == 2 and o.oracle == "VM_BUG_ON" and "bad pmd" in str(o.violation)]
    assert hits
    labels = [s.label for s in hits[0].trace.steps]
    assert labels.index("gup_pmd_range:pmd_cow_pte_mkexclusive") > \
        labels.index("copy_pmd_range:set_pmd_at")
    assert explore(race, get_variant("cowpte-relaxed"), bound=2).failure is None
    assert explore(race, Kernel, bound=2).failure is None


@pytest.mark.parametrize("variant", ["cowpte-relaxed", "cowpte-relaxed-shared-unmap"])
def test_relaxed_design_is_clean_on_random_programs(variant):
    cls = get_variant(variant)
    for seed in range(300):
        program = random_program(random.Random(seed), max_threads=4, max_ops=10,
                                 schedule_len=80, preempt=0.4)
        outcome = execute(program, cls)
        assert not outcome.failed, (seed, outcome.trace.verdict)


# -- each table-sharing oracle, on a deliberately broken design ----------------------------
class RefcountForgotten(CowPteRelaxed):
    """Shares the table without taking the child's reference."""

    def pmd_get_pte(self, table):
        return table.refcount


class ChildPmdWritable(CowPteRelaxed):
    """Shares the table but leaves the child's pmd writable."""

    async def share_prepared_table(self, src_mm, dst_mm, addr):
        await super().share_prepared_table(src_mm, dst_mm, addr)
        if dst_mm.pmd[addr // 4] is not None and not dst_mm.pmd[addr // 4].write:
            self.pmd_mkwrite_at(dst_mm, addr)


class LazyAccounting(CowPteRelaxed):
    """Shares the parent's table as it is: no per-PTE fork work (RFC v2's choice)."""

    async def copy_pmd_range(self, dst_vma, src_vma, addr, end):
        src = src_vma.vm_mm.pmd[addr // 4]
        dst = dst_vma.vm_mm.pmd[addr // 4]
        if dst is None:
            self.pmd_get_pte(src.table)
            from model.pgtable import Pmd
            self.set_pmd(dst_vma.vm_mm, addr, Pmd(src.table, False))
            self.set_pmd(src_vma.vm_mm, addr, Pmd(src.table, False))
        return 0


class ExclusiveKept(CowPteRelaxed):
    """Shares the prepared table, then marks its anon pages exclusive again."""

    async def share_prepared_table(self, src_mm, dst_mm, addr):
        await super().share_prepared_table(src_mm, dst_mm, addr)
        pmd = src_mm.pmd[addr // 4]
        if pmd is not None and not pmd.write:
            for pte in pmd.table.ptes:
                if pte is not None and pte.present and pte.folio.kind == "anon":
                    self.SetPageAnonExclusive(pte.folio)


class NoBreak(CowPteRelaxed):
    """Shares tables, then forgets to break them before changing them."""

    async def pte_offset_map_lock(self, mm, addr, label, readonly=False):
        return await Kernel.pte_offset_map_lock(self, mm, addr, label, readonly)


SHARE = "cowfuzz 1\nmap 0 1 anon rw populate=write\nthread 0\n  fork 1\n  wait 0\n"


@pytest.mark.parametrize("design, child_ops, oracle, what", [
    (RefcountForgotten, "", "table-sharing", "refcount of t1 is 1 but 2 pmds point at it"),
    (ChildPmdWritable, "", "table-sharing", "maps shared table t1 writable"),
    (LazyAccounting, "", "table-sharing", "shared table t1 holds a writable PTE at va 0"),
    (ExclusiveKept, "", "table-sharing", "which is PageAnonExclusive, at va 0"),
    (NoBreak, "  dontneed 0 1\n", "table-sharing", "mm2 changes pte[0] of t1"),
], ids=["refcount", "pmd_ro", "no_writable_pte", "no_exclusive_anon", "no_modify"])
def test_each_table_sharing_oracle_fires_on_a_broken_design(design, child_ops, oracle, what):
    program = parse_program(SHARE + "thread 1\n" + child_ops + "  signal 0\n")
    outcome = execute(program, design)
    assert outcome.oracle == oracle, outcome.trace.verdict
    assert what in str(outcome.violation)
    assert outcome.violation.objects.get("table") == "t1"
    assert not execute(program, CowPteRelaxed).failed
