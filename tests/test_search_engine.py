"""The sampling choosers and the guided engine: every run replays from the schedule
it recorded, the same seed gives the same search in any process, and the engine's
parts do what they say (feature owners, conflict-aimed schedules, collide)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import pytest

from fuzz.bench.depth import executions_to_find
from fuzz.program.generate import (PAIR_STATES, RACED, SETUP_PIN_SLOT, pair_program,
                                   raced_ops, random_program)
from fuzz.program.mutate import collide_op
from fuzz.program.ops import OPERATIONS
from fuzz.program.program import Op, Program, ThreadSpec
from fuzz.runtime.choosers import PCTChooser, POSChooser, ReplayChooser
from fuzz.runtime.executor import execute
from fuzz.runtime.urw import EventCounts, URWChooser
from fuzz.search.guided.corpus import Corpus, Entry
from fuzz.search.guided.probe import Probe
from fuzz.search.guided.schedules import targeted
from model.kernel import Kernel
from model.pgtable import PTRS_PER_PTE
from model.variants import get_variant
from tests.helpers import BARE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTS = EventCounts()
CHOOSERS = {
    "pos": lambda rng, p: POSChooser(rng, fail=0.1),
    "surw": lambda rng, p: URWChooser(rng, p, COUNTS, fail=0.1),
    "walk": lambda rng, p: Probe((1, 0, 2), rng.getrandbits(32), switch=0.3, fail=0.1),
    "pct": lambda rng, p: Probe((), rng.getrandbits(32), pct_depth=3, k=60),
    "probe-urw": lambda rng, p: _urw_probe(rng, p),
}


def _urw_probe(rng, program):
    """guided's URW sampler: a prefix, then URW sharing the probe's generator."""
    probe = Probe((0, 1), rng.getrandbits(32), fail=0.1)
    probe.urw = URWChooser(probe.rng, program, COUNTS, fail=0.1)
    return probe


@pytest.mark.parametrize("name", sorted(CHOOSERS))
def test_every_run_replays_from_its_recorded_schedule(name):
    rng = random.Random(7)
    for seed in range(25):
        p = random_program(random.Random(seed), max_threads=3, max_ops=6, schedule_len=0)
        p = Program(p.mappings, p.threads, (), fault_injection=seed % 3 == 0)
        first = execute(p, Kernel, CHOOSERS[name](rng, p))
        again = execute(p, Kernel, ReplayChooser(first.schedule))
        assert again.trace.render_text() == first.trace.render_text(), (name, seed)


class _Task:
    def __init__(self, tid):
        self.tid, self.name = tid, f"T{tid}"


def _probe_pct(changes):
    probe = Probe((), 3, pct_depth=len(changes) + 1)
    probe._changes = list(changes)
    return probe


def _chooser_pct(changes):
    chooser = PCTChooser(random.Random(3), depth=len(changes) + 1, fail=0.0)
    chooser.change_points = [c + 1 for c in changes]    # it counts decisions from 1
    return chooser


@pytest.mark.parametrize("make", [_probe_pct, _chooser_pct], ids=["probe", "pct"])
def test_pct_drops_the_running_task_below_the_tasks_dropped_before(make):
    """With two tasks, PCT's second change point must give the first dropped task the
    CPU back: A, B, A takes two preemptions. (With the task dropped later ranked above
    the one dropped before, as the probe once had it, the second change point did
    nothing.)"""
    tasks = [_Task(1), _Task(2)]
    chooser, ran = make((3, 6)), []
    for _ in range(9):
        running = ran[-1] if ran else tasks[0]
        runnable = [running] + [t for t in tasks if t is not running]
        ran.append(runnable[chooser.choose(2, "step", runnable)])
    segments = [t.tid for k, t in enumerate(ran) if k == 0 or t is not ran[k - 1]]
    assert len(segments) == 3 and segments[0] == segments[2], segments


def _search_in_subprocess(strategy: str, hashseed: str) -> str:
    code = textwrap.dedent(f"""
        import tempfile
        from fuzz.search.session import Session
        from fuzz.search.strategies import STRATEGIES
        from fuzz.search.worker import slice_rng
        from model.kernel import Kernel
        with tempfile.TemporaryDirectory() as d:
            s = Session(Kernel, "upstream", d)
            obj = STRATEGIES[{strategy!r}].create(s, {{"seed": 5}})
            for k in (1, 2):
                s.begin_slice(k, None, 150)
                obj.run_slice(slice_rng(5, 0, k))
            print("\\n--\\n".join(e.text for e in s.new_entries), end="")
    """)
    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("strategy", ["guided", "pos", "surw"])
def test_a_search_is_the_same_in_any_process(strategy):
    a = _search_in_subprocess(strategy, "1")
    b = _search_in_subprocess(strategy, "777")
    assert a and a == b


class _Probe:
    steps = 0
    decisions, tids, conflicts, racing, names = [], [], [], set(), {}


def test_a_feature_weighs_on_its_cheapest_entry_only():
    corpus = Corpus()
    big, small = _Probe(), _Probe()
    big.steps, small.steps = 90, 30
    a = Entry(Program(), {1, 2}, big)
    b = Entry(Program(), {2}, small)
    corpus.add(a)
    corpus.add(b)
    corpus.count([1, 2])
    corpus.count([2])
    corpus.weigh()
    assert a.energy == pytest.approx(1.0)          # feature 1: hit once, owned by a
    assert b.energy == pytest.approx(0.5)          # feature 2: hit twice, b is cheaper


def test_owners_kept_as_entries_come_are_the_earliest_cheapest_entries():
    """Weighing reads the owners Corpus.add keeps; they must be what a pass over every
    entry finds: for each feature, the earliest of its cheapest entries."""
    rng = random.Random(7)
    corpus, entries = Corpus(), []
    for _ in range(300):
        probe = _Probe()
        probe.steps = rng.randint(5, 40)
        entry = Entry(Program(), set(rng.sample(range(60), rng.randint(1, 8))), probe)
        corpus.add(entry)
        entries.append(entry)
        corpus.count(entry.features)
    expected = {}
    for e in entries:
        for f in e.features:
            if f not in expected or e.cost < expected[f].cost:
                expected[f] = e
    assert {f: id(e) for f, e in corpus.owner.items()} == {f: id(e) for f, e in expected.items()}
    corpus.weigh()
    for e in entries:
        owned = [f for f, o in expected.items() if o is e]
        assert e.energy == pytest.approx(sum(1.0 / corpus.hits[f] for f in owned))


def test_a_conflict_aimed_schedule_reorders_the_conflicting_steps():
    # step 3 (task 1) and step 5 (task 2) wrote the same object; decision 1 started step 3
    # choosing among tasks (1, 2); a swap runs task 2 there instead
    decisions = [(1, (1, 2), 0), (3, (1, 2), 0), (5, (2, 1), 0)]
    tids = [0, 1, 1, 1, 2, 2]
    choices = tuple(d[2] for d in decisions)
    prefixes = set()
    for seed in range(200):
        prefix = targeted(random.Random(seed), choices, decisions, tids, (3, 5))
        if prefix is not None:
            prefixes.add(prefix[:2])
    assert (0, 1) in prefixes                      # swap: task 2 before task 1's step 3
    assert all(p[0] == 0 for p in prefixes if len(p) > 1)    # decision 0 is kept


def test_collide_races_an_operation_with_its_copy():
    p = Program(threads=(ThreadSpec(0, (Op("dontneed", (0, 1)),)),))
    q = collide_op(random.Random(0), p)
    assert [t.ops for t in q.threads] == [(Op("dontneed", (0, 1)),)] * 2


RECEIVED = """cowfuzz 1
map 0 1 anon rw populate=write
thread 0
  fork 1
thread 0
  write 0
"""


def test_the_guided_engine_takes_received_entries_through_the_session_replay(tmp_path):
    """Entries from other workers run once, in the session's background replay, with the
    engine's probe: each joins the engine's corpus with its record, and none runs twice.
    A distilled corpus (reset) replaces the engine's."""
    from fuzz.search.session import Session
    from fuzz.search.strategies import STRATEGIES
    from fuzz.search.worker import slice_rng
    session = Session(Kernel, "upstream", tmp_path)
    guided = STRATEGIES["guided"].create(session, {"seed": 1})
    assert session.replayer is not None
    session.begin_slice(1, None, 20)
    session.sync([RECEIVED], [], replay=not STRATEGIES["guided"].replays_corpus)
    guided.run_slice(slice_rng(1, 0, 1))
    assert session.replayed == 1 and not session.to_replay
    received = [e for e in guided.corpus.entries if e.program is session.corpus[0]]
    assert len(received) == 1 and received[0].features and received[0].decisions
    assert set(received[0].features) <= session.features
    assert len(guided.corpus.entries) == len(session.corpus) > 1    # and the slice's own
    session.begin_slice(2, None, 5)
    session.sync([RECEIVED], [], reset=True)
    guided.run_slice(slice_rng(1, 0, 2))
    assert session.replayed == 1
    assert guided.corpus.entries[0].program is session.corpus[0]
    assert len(guided.corpus.entries) == len(session.corpus)


def test_guided_spends_its_random_share_as_random_does_outside_its_corpus(tmp_path):
    """The share ``random`` of guided's executions are the random strategy's (a random
    program, a random walk): they find what random finds, and nothing of them joins the
    session's corpus or the engine's, whose features stay those of guided's own inputs."""
    from fuzz.search.session import Session
    from fuzz.search.strategies import STRATEGIES
    from fuzz.search.worker import slice_rng
    session = Session(get_variant("fork-no-early-cow"), "fork-no-early-cow", tmp_path)
    guided = STRATEGIES["guided"].create(session, {"seed": 1, "random": 1.0})
    session.begin_slice(1, None, 400)
    guided.run_slice(slice_rng(1, 0, 1))
    assert session.found and session.runs > 1
    assert not session.corpus and not session.features and not guided.corpus.entries


def test_guided_gives_a_pair_program_whose_operations_met_the_next_pair_draws(tmp_path):
    """After a pair program whose two raced operations met, the next ``focus`` pair draws
    are that program again, each with no prefix (a fresh walk); after one whose operations
    did not meet, the next pair draw is another program. The draws from the corpus go
    on in between."""
    from fuzz.search.guided.pairs import met
    from fuzz.search.session import Session
    from fuzz.search.strategies import STRATEGIES
    from fuzz.search.worker import slice_rng
    session = Session(Kernel, "upstream", tmp_path)
    guided = STRATEGIES["guided"].create(session, {"seed": 1, "random": 0, "focus": 3})
    inputs, probes = [], []
    next_input, execute_in_session = guided._next_input, session.execute

    def recorded_input(rng):
        inputs.append(next_input(rng))
        return inputs[-1]

    def recorded_execute(program, chooser=None, **kw):
        probes.append(chooser)
        return execute_in_session(program, chooser, **kw)

    guided._next_input, session.execute = recorded_input, recorded_execute
    session.begin_slice(1, None, 800)
    guided.run_slice(slice_rng(1, 0, 1))
    assert len(inputs) == len(probes) == 800
    pairs = [(program, prefix, probes[i]) for i, (program, prefix, source) in enumerate(inputs)
             if source == "pair"]
    focused = unmet = i = 0
    while i < len(pairs) - 4:
        program, _, probe = pairs[i]
        if met(program, probe):
            again = pairs[i + 1:i + 4]
            assert all(p is program and prefix == () for p, prefix, _ in again)
            assert len({p.rng.getstate() for _, _, p in pairs[i:i + 4]}) == 4
            focused += 1
            i += 4
            continue
        unmet += 1
        assert pairs[i + 1][0] is not program
        i += 1
    assert focused >= 10 and unmet >= 10
    assert len(pairs) < 0.6 * len(inputs)       # the share of pair draws is unchanged


@pytest.mark.slow
def test_the_focus_on_met_pairs_finds_a_reuse_race_the_bare_engine_misses():
    """misplaced-unlock-page needs a write fault that reuses a page whose COW child
    exited, and a zap that frees the page between the fault's ptl release and its
    unlock_page: a pair program that reaches it needs tens of interleavings, and drawn
    afresh the same two operations come back in another state. Deterministic for the
    seed; without the focus the same budget finds nothing."""
    found, _ = executions_to_find("misplaced-unlock-page", "guided", 28, 3000,
                                  {**BARE, "focus": 10})
    missed, _ = executions_to_find("misplaced-unlock-page", "guided", 28, 3000, BARE)
    assert found is not None and missed is None


def test_the_random_share_finds_a_bug_of_a_long_sequence_sooner():
    """reuse-mapcount (CVE-2020-29374) needs a fork, the child's vmsplice and munmap, then
    the parent's write: four operations over two processes, in an order about one random
    execution in a thousand gets right, and no pair program. Deterministic for the seed;
    without the random share the same budget finds nothing."""
    found, _ = executions_to_find("reuse-mapcount", "guided", 3, 1500, {**BARE, "random": 0.1})
    missed, _ = executions_to_find("reuse-mapcount", "guided", 3, 1500, BARE)
    assert found is not None and missed is None


def test_a_pair_on_a_page_pinned_before_the_race_reaches_the_pin_oracle():
    """A pin the race finds in place: clear_refs write-protects the pinned page (on
    clear-refs-pinned, which lacks the skip of pinned pages) and the write fault that
    follows copies it, away from the pin. Only the pinned state puts a pin there before
    the COW; upstream stays clean on the same programs and schedules."""
    pair = (OPERATIONS["clear_refs"], OPERATIONS["write"])
    pinned, broken = 0, {"clear-refs-pinned": 0, "upstream": 0}
    for seed in range(120):
        p = pair_program(random.Random(seed), pair=pair)
        if p.threads[0].ops[0].name != "pin":
            continue
        pinned += 1
        for variant in broken:
            outcome = execute(p, get_variant(variant), Probe((), seed, switch=0.3))
            broken[variant] += outcome.status == "pin-coherence"
    assert pinned >= 8 and broken["clear-refs-pinned"] >= pinned // 4
    assert broken["upstream"] == 0


def test_a_flush_that_misses_the_second_threads_cpu_needs_its_translation():
    """Reclaim unmaps the page and defers its flush; the second thread's MADV_DONTNEED
    then drops the swap entry without flushing (reclaim-batched-flush-miss) and its
    load returns the discarded data -- only if its CPU held a translation of the page,
    which the load before its operation gives it. Upstream flushes the pending batch
    in the zap and stays clean."""
    pair = (OPERATIONS["reclaim"], OPERATIONS["dontneed"])
    lost = {(variant, translated): 0 for variant in ("reclaim-batched-flush-miss", "upstream")
            for translated in (False, True)}
    for seed in range(600):
        p = pair_program(random.Random(seed), pair=pair)
        translated = raced_ops(p)[1] > (p.threads[1].ops[0].name == "wait")
        for variant in ("reclaim-batched-flush-miss", "upstream"):
            outcome = execute(p, get_variant(variant), Probe((), seed, switch=0.3))
            lost[variant, translated] += outcome.status == "lost-write"
    assert lost["reclaim-batched-flush-miss", True] > 0
    assert lost["reclaim-batched-flush-miss", False] == 0
    assert lost["upstream", True] == lost["upstream", False] == 0


def test_a_pair_program_races_one_operation_per_thread_on_a_page_that_holds_data():
    raced = {o.name for o in RACED}
    states = {(kind, populate) for _, _, kind, populates, _ in PAIR_STATES for populate in populates}
    seen = set()
    tables = whole = translated = 0
    for seed in range(400):
        p = pair_program(random.Random(seed))
        assert p == pair_program(random.Random(seed))          # the seed decides it
        (m,) = p.mappings
        assert (m.kind, m.populate) in states
        assert m.kind == "file" or m.prot == "rw"
        first, second, *children = p.threads
        assert first.pid == second.pid == 0
        setup = [op.name for op in first.ops[:-2]]
        assert setup in ([], ["fork", "signal"], ["fork", "waitpid", "signal"], ["pin", "signal"])
        if setup == ["pin", "signal"]:                         # pinned before the race,
            pin = first.ops[0]                                 # in a slot of its own
            assert pin.args[:2] == (SETUP_PIN_SLOT, m.va) and m.kind == "anon"
        assert setup == [] or [op.name for op in second.ops[:1]] == ["wait"]  # after the setup
        _, lead = raced_ops(p)
        if lead > (1 if setup else 0):                         # a translation on its CPU too
            assert second.ops[lead - 1] == Op("read", (m.va,))
            assert second.ops[lead].name != "read"
            translated += 1
        assert first.ops[-2].name in raced and second.ops[lead].name in raced
        pair = {first.ops[-2].name, second.ops[lead].name}      # a consumer comes with its producer
        assert all(OPERATIONS[n].needs in pair for n in pair if OPERATIONS[n].needs)
        assert first.ops[-1].name == "read"                    # the first thread observes
        assert len(second.ops) <= lead + 2
        assert all(t.pid > 0 for t in children)
        if setup == ["fork", "signal"]:                        # the child holds the page
            assert [op.name for op in children[0].ops] == ["wait", "read"]
        if "waitpid" in setup:                                 # the child has exited
            assert children[0].ops == ()
        assert all([op.name for op in t.ops] == ["read"]
                   for t in children[1 if "fork" in setup else 0:])
        seen.add((m.kind, tuple(setup)))
        if m.npages == PTRS_PER_PTE:                           # a whole page table
            assert m.va % PTRS_PER_PTE == 0
            tables += 1
            ranged = [op for op in (first.ops[-2], second.ops[lead])
                      if "npages" in OPERATIONS[op.name].arg_names]
            whole += any(op.args[0] == m.va and op.args[1] == m.npages for op in ranged)
        else:
            assert m.npages in (1, 2)
    assert len(seen) == 5                                      # every state comes up
    assert 120 < translated < 280          # the second thread loads the page half the time
    assert 60 < tables < 140 and whole > 10    # a range operation often empties the table


def test_pair_programs_let_guided_find_two_zaps_racing_that_it_misses_without_them():
    """Two threads of one process zap the same page, and the first loads it after its own
    zap returned: a program random_program writes once in about 2,000. Deterministic for
    the seed; without pair programs the same budget finds nothing."""
    found, _ = executions_to_find("parallel-zap-flush-miss", "guided", 4, 3000, BARE)
    missed, _ = executions_to_find("parallel-zap-flush-miss", "guided", 4, 3000,
                                   {**BARE, "pair": 0.0})
    assert found is not None and missed is None


@pytest.mark.slow
def test_a_pair_on_a_page_whose_cow_child_exited_finds_the_reuse_race():
    """misplaced-unlock-page needs a page mapped once but not exclusive (forked, and the
    child exited: the "unshared" state) when a write fault reuses it and a zap frees it;
    random programs rarely fork, wait for the child and then race. Deterministic for the
    seed; without pair programs the same budget finds nothing."""
    found, _ = executions_to_find("misplaced-unlock-page", "guided", 2, 8000, BARE)
    missed, _ = executions_to_find("misplaced-unlock-page", "guided", 2, 8000,
                                   {**BARE, "pair": 0.0})
    assert found is not None and missed is None


@pytest.mark.slow
def test_urw_among_guided_samplers_splits_a_short_operation_around_a_fork():
    """gup-fast-seq-parity needs GUP-fast to read the PTE before a whole fork and pin the
    page after it: a random walk mostly runs the short pin whole before the long fork,
    URW (weighing each task by the steps it has left) spreads the pin's steps over the
    fork's. Deterministic for the
    seed; without URW the same budget finds nothing."""
    found, _ = executions_to_find("gup-fast-seq-parity", "guided", 2, 20000, BARE)
    missed, _ = executions_to_find("gup-fast-seq-parity", "guided", 2, 20000,
                                   {**BARE, "urw": 0})
    assert found is not None and missed is None

