"""Hypothesis strategies for cowfuzz programs, for your own ``@given`` tests.

    from hypothesis import given
    from fuzz.hyp import SETTINGS, check, programs

    @SETTINGS
    @given(programs(max_threads=2))
    def test_my_design_is_clean(program):
        check(program, MyKernel)          # fails with the trace and a replay token

Programs are shaped like the scenarios COW bugs are made of (see
``programs``): populate, fork, a reference taken in one process, the page
modified in the other, phases handed over by events, threads racing
beside. Operations are flat draws (a kind, a name, one draw per argument),
so examples are cheap and shrink well: Hypothesis drops roles, operations,
threads and mappings, lowers arguments towards the first value of their
domain and the schedule towards zeros (fewer preemptions). ``check`` raises
one exception type per oracle, so each oracle's failure shrinks and is
reported on its own.

``KernelMachine`` is the stateful mode: each example starts from a scenario
``programs()`` draws, and rules append operations to threads (a fork rule
adds the child's thread), events that order two threads, and preemptions to
the schedule; the program built runs at the end, and no oracle may fire.
"""

from __future__ import annotations

import functools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from fuzz.program.bytecodec import MAX_OPS, MAX_THREADS
from fuzz.program.ops import (
    ACCESS,
    LIFE,
    MAX_EVENTS,
    OPERATIONS,
    PATH,
    Arg,
    shrink_order,
)
from fuzz.program.ops import SLOT as SLOT_ARG
from fuzz.program.program import MAX_PROCS, SWAPS, Op, Program, ThreadSpec, fit_mapping
from fuzz.program.textcodec import format_program
from fuzz.runtime.executor import execute
from model.pgtable import USER_PAGES

#: The settings these strategies are meant for, registered as the profile "cowfuzz"
#: (``settings.load_profile("cowfuzz")``) and usable as a decorator (``@SETTINGS``).
#: A run takes milliseconds, so a thousand examples cost seconds, where Hypothesis'
#: default of 100 rarely lines up the few roles a COW bug needs. No deadline: a run's
#: time varies with the machine's load. Twelve rules per stateful example keep the
#: programs ``KernelMachine`` builds small and within the byte form's bounds.
settings.register_profile("cowfuzz", max_examples=1000, deadline=None, stateful_step_count=12)
SETTINGS = settings.get_profile("cowfuzz")


def _repeats(name: str) -> int:
    """How often a name appears in a draw (Hypothesis samples uniformly): by its
    weight in generated programs, at least once."""
    return max(1, (OPERATIONS[name].weight + 1) // 2)


def weighted_ops() -> tuple[str, ...]:
    """Operation names in shrink order, each repeated by its weight: a flat draw for
    ``operations`` (``programs`` draws a kind first, see ``operation_kinds``)."""
    return tuple(name for name in shrink_order() for _ in range(_repeats(name)))


#: a preemption: switch to the k-th runnable task after the current one
CHOICES_NONZERO = st.integers(1, 3)


def schedules(max_preemptions: int = 24, max_gap: int = 15) -> st.SearchStrategy[tuple[int, ...]]:
    """Schedules as preemptions separated by runs of zeros: (gap, choice) pairs.

    A bug window is usually a few decisions wide, so a schedule that keeps
    switching at short random intervals (a random walk) hits one far more
    often than one choice drawn per decision or a few preemptions anywhere.
    Shrinks towards fewer preemptions, then later and smaller ones.
    """
    return st.lists(st.tuples(st.integers(0, max_gap), CHOICES_NONZERO),
                    max_size=max_preemptions).map(_place)


def _place(preemptions) -> tuple[int, ...]:
    out: list[int] = []
    for gap, choice in preemptions:
        out.extend([0] * gap)
        out.append(choice)
    return tuple(out)


#: argument values in the order Hypothesis should prefer (it favours, and shrinks
#: towards, the first): the common case of the cow.c tests first
PREFERRED = {
    "populate": ("write", "none", "read", "swap"),
    "path": ("fast", "slow"),
    "life": ("longterm", "short"),
}

#: mapping attributes, repeated where a value should be drawn more often: most COW
#: bugs are about writable private anonymous memory that is populated
_POPULATE = st.sampled_from(("write", "write", "none", "read", "swap"))
_KIND = st.sampled_from(("anon", "anon", "file", "shared"))
_PROT = st.sampled_from(("rw", "rw", "rw", "r"))
#: the pin slots drawn: two, so that a devread, devwrite or unpin usually finds a pin
SLOTS = (0, 1)


@st.composite
def mappings(draw, max_mappings: int = 3):
    """Initial mappings of process 0, non-overlapping, sorted by address."""
    out, taken = [], set()
    for _ in range(draw(st.integers(1, max_mappings))):
        m = fit_mapping(draw(st.integers(0, USER_PAGES - 1)), draw(st.integers(1, 4)),
                        draw(_KIND), draw(_PROT), draw(st.integers(0, 3)), draw(_POPULATE))
        pages = set(range(m.va, m.va + m.npages))
        if not pages & taken:
            out.append(m)
            taken |= pages
    return tuple(sorted(out, key=lambda m: m.va))


@functools.cache
def _arg_values(arg: Arg) -> st.SearchStrategy:
    if arg.name == "npages":
        return st.integers(1, 4)
    if arg.name == "slot":
        return st.sampled_from(SLOTS)
    return st.sampled_from(PREFERRED.get(arg.name) or tuple(arg.domain))


@functools.cache
def _va_values(vas: tuple[int, ...], focus: int | None) -> st.SearchStrategy:
    """Addresses: half of the draws the focus page (a bug needs several operations on
    one page), the rest any mapped page."""
    if focus is None:
        return st.sampled_from(vas)
    return st.one_of(st.just(focus), st.sampled_from(vas))


def _arg_strategy(arg: Arg, vas, focus, pids):
    if arg.name == "va":
        return _va_values(tuple(vas), focus)
    if arg.name == "pid" and pids:
        return st.sampled_from(tuple(pids))
    return _arg_values(arg)


@st.composite
def operations(draw, vas=tuple(range(USER_PAGES)), names=None, *, focus=None, pids=None):
    """One operation (by default any, in shrink order).

    ``names`` is a sequence of names (a name may repeat, to weight it) or a
    tuple of such sequences (a kind is drawn first, then a name of that
    kind). ``va`` arguments are drawn from ``vas`` (the mapped pages), half
    of them ``focus`` if given; ``pid`` arguments from ``pids`` if given.
    """
    names = shrink_order() if names is None else names
    if names and isinstance(names[0], tuple):
        names = draw(st.sampled_from(names))
    name = draw(st.sampled_from(names))
    return Op(name, tuple(draw(_arg_strategy(a, vas, focus, pids))
                          for a in OPERATIONS[name].args))


#: the kinds of operation a COW bug is made of: an access; a reference taken (a pin,
#: a pipe, /proc/pid/mem); the reference used; a mapping dropped or changed; the page
#: moved or write-protected behind the process's back. A kind is drawn first, so each
#: is as likely as any other however many operations it has; operations of none of
#: these kinds (a new one) form a kind of their own.
KINDS_OF_OPERATION = (
    ("read", "write"),
    ("pin", "vmsplice", "procmem"),
    ("devread", "devwrite", "unpin", "piperead"),
    ("munmap", "dontneed", "mprotect", "exit"),
    ("pageout", "reclaim", "clear_refs", "mmap"),
)


def operation_kinds(names) -> tuple[tuple[str, ...], ...]:
    """``KINDS_OF_OPERATION`` restricted to ``names``, each name repeated by its
    generation weight; the rest of ``names`` form one more kind."""
    weighted = {n: _repeats(n) for n in names}
    known = {n for kind in KINDS_OF_OPERATION for n in kind}
    kinds = [tuple(n for n in kind if n in weighted for _ in range(weighted[n]))
             for kind in KINDS_OF_OPERATION]
    kinds.append(tuple(n for n in weighted if n not in known))
    return tuple(k for k in kinds if k)


#: The roles in a COW scenario and the operations that play each, the most typical
#: first (a role's operation shrinks towards it), as in cow.c's tests: the parent
#: prepares the page before fork; after fork one process takes a reference to it,
#: releases its own mapping, the other process modifies the page, and the first
#: looks through its reference.
ROLES = {
    "prepare": ("pin", "vmsplice", "pageout", "write"),
    "reference": ("vmsplice", "pin"),
    "release": ("munmap", "dontneed", "exit", "pageout", "mprotect", "unpin"),
    "modify": ("write", "write", "procmem", "pin"),
    "observe": ("piperead", "devread", "read"),
}
#: who plays each role after the fork: "first" is the process that acts first
#: (the child or the parent, drawn), "other" the other one
AFTER_FORK = (("first", "reference"), ("first", "release"), ("other", "modify"),
              ("first", "observe"))
#: operations a scenario places itself: the fork and the events that hand over
SKELETON = ("fork", "signal", "wait", "waitpid")
#: operations of a thread that runs beside the scenario, unordered (a racer), and
#: the processes racers belong to
MAX_RACER = 2
RACER_PIDS = (0, 0, 1)


@st.composite
def _subject(draw):
    """The mapping a scenario is about: mostly private anonymous memory, writable,
    populated."""
    return fit_mapping(draw(st.integers(0, USER_PAGES - 1)), draw(st.integers(1, 2)),
                       draw(st.sampled_from(("anon", "anon", "anon", "file"))), "rw", 0,
                       draw(st.sampled_from(("write", "write", "swap", "none"))))


@st.composite
def _role(draw, players, step):
    """The operations of one role: none a quarter of the time; else an operation
    that plays it (any operation a quarter of the time), perhaps one more of any
    kind. Shrinks towards the role left out."""
    if not draw(st.integers(0, 3)):
        return []
    first = draw(players if players is not None and draw(st.integers(0, 3)) < 3 else step)
    return [first] + draw(st.lists(step, max_size=1))


@st.composite
def programs(draw, *, max_threads: int = 3, max_ops: int = 6, ops=None,
             faults: bool = False, schedule: bool = True):
    """Programs shaped like the scenarios COW bugs are made of, plus racers.

    A subject mapping (mostly populated private anonymous memory) and up to
    two more. Process 0 plays the first of ``ROLES``; three times in four it
    then forks process 1, and the two play the rest in turn, each turn
    handed over by an event (``signal k`` ends one, ``wait k`` starts the
    next): "the child vmsplices and unmaps, then the parent writes" needs
    no lucky schedule. Otherwise process 0 goes on, up to ``max_ops``
    operations. Up to ``max_threads`` threads in all: the others (of
    either process) race beside the scenario, unordered, and the schedule
    adds preemptions. Half of the addresses drawn are the subject's first
    page. Shrinks towards no fork, fewer roles and threads, then as
    operations do.

    Within the byte form's bounds (at most 4 threads and 16 operations per
    thread), so every drawn program can join a coverage campaign's corpus.
    ``ops`` restricts the operations drawn (by default every operation with
    a generation weight); ``faults`` lets the draw turn on allocation-failure
    injection; ``schedule=False`` leaves the schedule empty (the
    non-preemptive run).
    """
    max_threads = max(1, min(max_threads, MAX_THREADS))
    max_ops = max(1, min(max_ops, MAX_OPS))
    subject = draw(_subject())
    end = subject.va + subject.npages
    maps = tuple(sorted((subject,) + tuple(m for m in draw(mappings(2))
                                           if m.va >= end or m.va + m.npages <= subject.va),
                        key=lambda m: m.va))
    vas = tuple(va for m in maps for va in range(m.va, m.va + m.npages))
    names = tuple(o.name for o in OPERATIONS.values() if o.weight) if ops is None \
        else tuple(dict.fromkeys(ops))
    kinds = operation_kinds(tuple(n for n in names if n not in SKELETON) or names)

    def playing(role):
        players = tuple(n for n in ROLES[role] if n in names)
        return operations(vas, players, focus=subject.va, pids=(0, 1)) if players else None

    step = operations(vas, kinds, focus=subject.va, pids=(0, 1))
    prepared = draw(_role(playing("prepare"), step))
    forked = "fork" in names and max_threads > 1 and draw(st.integers(0, 3)) > 0
    if forked:
        ops_of = {0: prepared + [Op("fork", (1,))], 1: []}
        first = draw(st.sampled_from((1, 0)))
        last, event = 0, 0
        for who, role in AFTER_FORK:
            got = draw(_role(playing(role), step))
            pid = first if who == "first" else 1 - first
            if got and pid != last:
                ops_of[last].append(Op("signal", (event,)))
                ops_of[pid].append(Op("wait", (event,)))
                event += 1
            if got:
                ops_of[pid].extend(got)
                last = pid
        threads = [ThreadSpec(pid, tuple(o)) for pid, o in ops_of.items() if o]
    else:
        more = draw(st.lists(step, min_size=0 if prepared else 1,
                             max_size=max(0, max_ops - len(prepared))))
        threads = [ThreadSpec(0, tuple(prepared + more))]
    for _ in range(draw(st.integers(0, max_threads - len(threads)))):
        pid = draw(st.sampled_from(RACER_PIDS)) if forked else 0
        threads.append(ThreadSpec(pid, tuple(draw(st.lists(
            step, min_size=1, max_size=min(max_ops, MAX_RACER))))))
    sched = draw(schedules()) if schedule else ()
    injection = draw(st.booleans()) if faults else False
    swap = draw(st.sampled_from(SWAPS))
    return Program(maps, tuple(threads), sched, injection, swap=swap)


class ProgramFailed(AssertionError):
    """A program made an oracle fire (or the model fail); the message has the trace.

    ``check`` raises a subclass per oracle (``ProgramFailed.of("writable-shared")``):
    Hypothesis tells failures apart by their exception type, so it shrinks each
    oracle's failure on its own, never from one oracle to another, and reports
    every oracle it saw fire.
    """

    oracle = ""

    @staticmethod
    @functools.cache
    def of(oracle: str) -> type[ProgramFailed]:
        """The subclass for ``oracle`` (the verdict as ``expect`` lines spell it)."""
        return type(f"ProgramFailed[{oracle}]", (ProgramFailed,), {"oracle": oracle})


def check(program: Program, variant_cls, variant_name: str | None = None):
    """Run ``program``; raise ProgramFailed (of the oracle that fired) with the replay
    token and trace if it fails."""
    from fuzz.program.replay_token import make_token
    from fuzz.triage.report import build_report, render_text
    outcome = execute(program, variant_cls)
    if outcome.failed:
        name = variant_name or getattr(variant_cls, "name", None) or variant_cls.__name__
        failing = program.with_schedule(outcome.schedule)
        raise ProgramFailed.of(outcome.status)(
            f"{outcome.trace.verdict}\n{make_token(program, name)}\n"
            f"{format_program(failing)}\n"
            f"{render_text(build_report(program, name, outcome))}")
    return outcome


THREAD = st.integers(0, MAX_THREADS - 1)      # reduced modulo the threads there are
SLOT = st.sampled_from(SLOT_ARG.domain[:2])
PAGE = st.integers(0, USER_PAGES - 1)          # reduced modulo the mapped pages


def _uses(program: Program, name: str) -> int:
    """One more than the largest first argument of ``name`` in ``program`` (0 if none):
    the next child pid (``fork``) or event (``signal``) a rule may use."""
    return max((op.args[0] + 1 for t in program.threads for op in t.ops if op.name == name),
               default=0)


def _focus(program: Program, vas: tuple[int, ...]) -> int:
    """The page the scenario is about: the one its operations name most (the lowest of
    a tie), as ``programs()`` draws half of its addresses on its subject's page."""
    named = [op.args[OPERATIONS[op.name].arg_names.index("va")]
             for t in program.threads for op in t.ops if "va" in OPERATIONS[op.name].arg_names]
    return max(vas, key=lambda va: (named.count(va), -va))


class KernelMachine(RuleBasedStateMachine):
    """Stateful test of a variant: subclass, set ``variant``, and collect ``TestCase``.

        @SETTINGS
        class MyDesignMachine(KernelMachine):
            variant = MyKernel
        TestMyDesign = MyDesignMachine.TestCase

    Each example starts from a scenario ``programs()`` draws (a subject
    mapping, perhaps a fork and the turns of a COW bug handed over by
    events, a racer), so the steps a bug is made of are there from the
    start; the rules then grow it. Each rule is a kernel entry point
    appended to a thread; ``fork_and_take_turns`` forks and has the two
    processes take a COW scenario's turns; ``hand_over`` orders two threads
    with an event and ``preempt`` extends the schedule. When the rules are
    done, the program runs and no oracle may fire; a failure shrinks to the
    shortest rule sequence Hypothesis finds.
    """

    variant = None                    # a model.kernel.Kernel subclass; upstream by default

    def __init__(self):
        super().__init__()
        if self.variant is None:
            from model.kernel import Kernel
            self.variant = Kernel
        self.maps: tuple = ()
        self.vas: tuple[int, ...] = ()
        self.focus = 0
        self.threads: list[ThreadSpec] = []
        self.schedule: list[int] = []
        self.swap = SWAPS[0]
        self.next_child = 1
        self.next_event = 0

    @initialize(start=programs(max_threads=2))
    def scenario(self, start: Program):
        """The program the rules grow: a scenario, with a second thread of process 0
        if it has only one."""
        self.maps = start.mappings
        self.vas = tuple(va for m in start.mappings for va in range(m.va, m.va + m.npages))
        self.threads = list(start.threads)
        if len(self.threads) == 1:
            self.threads.append(ThreadSpec(0, ()))
        self.schedule = list(start.schedule)
        self.focus = _focus(start, self.vas)
        self.swap = start.swap
        self.next_child = max(1, _uses(start, "fork"))
        self.next_event = _uses(start, "signal")

    def program(self) -> Program:
        return Program(self.maps, tuple(self.threads), tuple(self.schedule), swap=self.swap)

    def page(self, index: int) -> int:
        """A mapped page (rules draw an index: it shrinks towards the first page)."""
        return self.vas[index % len(self.vas)]

    def _append(self, index: int, name: str, **values) -> None:
        """Append operation ``name`` to a thread; its arguments, in the operation
        table's order, are taken by name from ``values``."""
        if "va" in values:
            values["va"] = self.page(values["va"])
        args = tuple(values[arg] for arg in OPERATIONS[name].arg_names)
        i = index % len(self.threads)
        t = self.threads[i]
        self.threads[i] = ThreadSpec(t.pid, t.ops + (Op(name, args),))

    @rule(index=THREAD, write=st.booleans(), va=PAGE)
    def access(self, index, write, va):
        self._append(index, "write" if write else "read", va=va)

    @rule(index=THREAD, slot=SLOT, va=PAGE, access=st.sampled_from(ACCESS.domain),
          path=st.sampled_from(PATH.domain), life=st.sampled_from(LIFE.domain))
    def pin(self, index, slot, va, access, path, life):
        self._append(index, "pin", slot=slot, va=va, access=access, path=path, life=life)

    @rule(index=THREAD, slot=SLOT, op=st.sampled_from(("devread", "devwrite", "unpin")))
    def use_pin(self, index, slot, op):
        self._append(index, op, slot=slot)

    @rule(index=THREAD, op=st.sampled_from(("mprotect-r", "mprotect-rw", "dontneed", "pageout",
                                            "reclaim", "munmap")),
          va=PAGE)
    def memory(self, index, op, va):
        name, _, prot = op.partition("-")
        self._append(index, name, va=va, npages=1, prot=prot)

    @rule(index=THREAD, op=st.sampled_from(("vmsplice", "piperead", "clear_refs", "procmem")),
          va=PAGE, pid=st.integers(0, MAX_PROCS - 1))
    def kernel_access(self, index, op, va, pid):
        self._append(index, op, va=va, pid=pid % self.next_child)

    @precondition(lambda self: self.next_child < MAX_PROCS and len(self.threads) < MAX_THREADS)
    @rule(index=THREAD)
    def fork(self, index):
        """Fork from a thread; the child gets a thread of its own."""
        self._append(index, "fork", child=self.next_child)
        self.threads.append(ThreadSpec(self.next_child, ()))
        self.next_child += 1

    @precondition(lambda self: self.next_child < MAX_PROCS and len(self.threads) < MAX_THREADS
                  and self.next_event + len(AFTER_FORK) <= MAX_EVENTS)
    @rule(index=THREAD, data=st.data())
    def fork_and_take_turns(self, index, data):
        """Fork from a thread; then that thread and the child's take the turns a COW bug is
        made of (``AFTER_FORK``: a reference taken, a mapping released, the page
        modified by the other process, the reference looked through), each turn handed
        over by an event, as ``programs()`` draws them. One rule, because a sequence
        of single operations lines these up too rarely."""
        parent = index % len(self.threads)
        pids = tuple(range(self.next_child + 1))
        self._append(parent, "fork", child=self.next_child)
        self.threads.append(ThreadSpec(self.next_child, ()))
        self.next_child += 1
        child = len(self.threads) - 1
        names = tuple(o.name for o in OPERATIONS.values() if o.weight and o.name not in SKELETON)
        step = operations(self.vas, operation_kinds(names), focus=self.focus, pids=pids)
        first = data.draw(st.sampled_from((child, parent)))
        last = parent
        for who, role in AFTER_FORK:
            players = operations(self.vas, ROLES[role], focus=self.focus, pids=pids)
            got = data.draw(_role(players, step))
            if not got:
                continue
            turn = first if who == "first" else parent + child - first
            if turn != last:
                self._append(last, "signal", event=self.next_event)
                self._append(turn, "wait", event=self.next_event)
                self.next_event += 1
            t = self.threads[turn]
            self.threads[turn] = ThreadSpec(t.pid, t.ops + tuple(got))
            last = turn

    @rule(index=THREAD)
    def exit(self, index):
        self._append(index, "exit")

    @precondition(lambda self: self.next_event < MAX_EVENTS)
    @rule(index=THREAD, to=THREAD)
    def hand_over(self, index, to):
        """Order two threads: what ``to`` does next waits for what ``index`` has done
        (``signal`` there, ``wait`` here), as in "the child unmaps, then the parent
        writes"."""
        if index % len(self.threads) != to % len(self.threads):
            self._append(index, "signal", event=self.next_event)
            self._append(to, "wait", event=self.next_event)
            self.next_event += 1

    @rule(gap=st.integers(0, 15), choice=CHOICES_NONZERO)
    def preempt(self, gap, choice):
        """Extend the schedule: ``gap`` decisions without a switch, then one."""
        self.schedule.extend([0] * gap + [choice])

    def teardown(self):
        """No oracle may fire on the program the rules built. One run per example, not
        one per rule: Hypothesis' shrinker finds the shortest rule sequence anyway, and a
        run after every rule made each shrinking step cost up to a dozen runs."""
        check(self.program(), self.variant)
