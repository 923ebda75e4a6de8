"""Hypothesis strategies for cowfuzz programs, for your own ``@given`` tests.

    from hypothesis import given
    from fuzz.hyp import programs, check

    @given(programs(max_threads=2))
    def test_my_design_is_clean(program):
        check(program, MyKernel)          # fails with the trace and a replay token

Draws are flat (an operation is a name and one draw per argument), so
examples are cheap and shrink well: Hypothesis deletes operations, threads
and mappings, lowers arguments towards the first value of their domain and
the schedule towards zeros (fewer preemptions).

``KernelMachine`` is the stateful mode: rules append operations to threads
(a fork rule adds the child's thread) and preemptions to the schedule;
after every rule the program built so far runs, and no oracle may fire.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fuzz.program.bytecodec import MAX_OPS, MAX_THREADS
from fuzz.program.ops import ACCESS, LIFE, OPERATIONS, PATH, Arg, forked_child, shrink_order
from fuzz.program.ops import SLOT as SLOT_ARG
from fuzz.program.program import KINDS, MAX_PROCS, PROTS, SWAPS, Op, Program, ThreadSpec, fit_mapping
from fuzz.program.textcodec import format_program
from fuzz.runtime.executor import execute
from model.pgtable import USER_PAGES


def weighted_ops() -> tuple[str, ...]:
    """The default draw: operation names in shrink order, each repeated by its weight
    in generated programs (Hypothesis samples uniformly), at least once."""
    return tuple(name for name in shrink_order()
                 for _ in range(max(1, (OPERATIONS[name].weight + 1) // 2)))


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

_POPULATE = st.sampled_from(PREFERRED["populate"])
_KIND = st.sampled_from(KINDS)
_PROT = st.sampled_from(PROTS)


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
    return st.sampled_from(PREFERRED.get(arg.name) or tuple(arg.domain))


def _arg_strategy(arg: Arg, vas):
    return st.sampled_from(vas) if arg.name == "va" else _arg_values(arg)


@st.composite
def operations(draw, vas=tuple(range(USER_PAGES)), names=None):
    """One operation (by default any, in shrink order); ``va`` arguments are drawn
    from ``vas`` (the mapped pages)."""
    name = draw(st.sampled_from(shrink_order() if names is None else names))
    return Op(name, tuple(draw(_arg_strategy(a, vas)) for a in OPERATIONS[name].args))


@st.composite
def programs(draw, *, max_threads: int = 3, max_ops: int = 6, ops=None,
             faults: bool = False, schedule: bool = True):
    """Programs: mappings, threads of process 0, threads of forked children, a schedule.

    Within the byte form's bounds (at most 4 threads and 16 operations per
    thread), so every drawn program can join a coverage campaign's corpus.

    ``ops`` restricts the operations drawn (a name may repeat, to weight it;
    ``weighted_ops()`` by default); ``faults`` lets the draw turn on
    allocation-failure injection; ``schedule=False`` leaves the schedule empty
    (the non-preemptive run).
    """
    max_threads = min(max_threads, MAX_THREADS)
    max_ops = min(max_ops, MAX_OPS)
    maps = draw(mappings())
    vas = tuple(va for m in maps for va in range(m.va, m.va + m.npages))
    op = operations(vas, weighted_ops() if ops is None else tuple(ops))
    threads = [ThreadSpec(0, tuple(draw(st.lists(op, min_size=1, max_size=max_ops))))
               for _ in range(draw(st.integers(1, max_threads)))]
    forked = sorted({forked_child(o) for t in threads for o in t.ops} - {None})
    for child in forked:
        for _ in range(draw(st.integers(0, 2))):
            if len(threads) < MAX_THREADS:
                threads.append(ThreadSpec(child, tuple(draw(st.lists(op, max_size=max_ops)))))
    sched = draw(schedules()) if schedule else ()
    injection = draw(st.booleans()) if faults else False
    swap = draw(st.sampled_from(SWAPS))
    return Program(maps, tuple(threads), sched, injection, swap=swap)


class ProgramFailed(AssertionError):
    """A program made an oracle fire (or the model fail); the message has the trace."""


def check(program: Program, variant_cls, variant_name: str | None = None):
    """Run ``program``; raise ProgramFailed with the replay token and trace if it fails."""
    from fuzz.program.replay_token import make_token
    from fuzz.triage.report import build_report, render_text
    outcome = execute(program, variant_cls)
    if outcome.failed:
        name = variant_name or getattr(variant_cls, "name", None) or variant_cls.__name__
        failing = program.with_schedule(outcome.schedule)
        raise ProgramFailed(f"{outcome.trace.verdict}\n{make_token(program, name)}\n"
                            f"{format_program(failing)}\n"
                            f"{render_text(build_report(program, name, outcome))}")
    return outcome


THREAD = st.integers(0, MAX_THREADS - 1)      # reduced modulo the threads there are
SLOT = st.sampled_from(SLOT_ARG.domain[:2])
PAGE = st.sampled_from((0, 1, 4))             # the machine's mapped pages


class KernelMachine(RuleBasedStateMachine):
    """Stateful test of a variant: subclass, set ``variant``, and collect ``TestCase``.

        class TestMyDesign(KernelMachine):
            variant = MyKernel
        TestMyDesignCase = TestMyDesign.TestCase

    Process 0 starts with two threads, two anon pages (va 0-1, written) and
    a private file page (va 4, read). Each rule is a kernel entry point
    appended to a thread; ``preempt`` extends the schedule. After every rule
    the whole program so far runs from the start (a run is a few hundred
    microseconds), so a failure names the shortest rule sequence Hypothesis
    can shrink to.
    """

    variant = None                    # a model.kernel.Kernel subclass; upstream by default

    def __init__(self):
        super().__init__()
        if self.variant is None:
            from model.kernel import Kernel
            self.variant = Kernel
        self.maps = (fit_mapping(0, 2, "anon", "rw", 0, "write"),
                     fit_mapping(4, 1, "file", "rw", 0, "read"))
        self.threads: list[ThreadSpec] = [ThreadSpec(0, ()), ThreadSpec(0, ())]
        self.schedule: list[int] = []
        self.next_child = 1

    def program(self) -> Program:
        return Program(self.maps, tuple(self.threads), tuple(self.schedule))

    def _append(self, index: int, name: str, **values) -> None:
        """Append operation ``name`` to a thread; its arguments, in the operation
        table's order, are taken by name from ``values``."""
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

    @precondition(lambda self: self.next_child < MAX_PROCS)
    @rule(index=THREAD)
    def fork(self, index):
        """Fork from a thread; the child gets a thread of its own."""
        self._append(index, "fork", child=self.next_child)
        self.threads.append(ThreadSpec(self.next_child, ()))
        self.next_child += 1

    @rule(index=THREAD)
    def exit(self, index):
        self._append(index, "exit")

    @rule(gap=st.integers(0, 15), choice=CHOICES_NONZERO)
    def preempt(self, gap, choice):
        """Extend the schedule: ``gap`` decisions without a switch, then one."""
        self.schedule.extend([0] * gap + [choice])

    @invariant()
    def no_oracle_fires(self):
        check(self.program(), self.variant)
