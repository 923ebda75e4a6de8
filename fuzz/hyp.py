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

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fuzz.program.bytecodec import MAX_OPS, MAX_THREADS
from fuzz.runtime.executor import execute
from fuzz.program.generate import OP_WEIGHTS
from fuzz.program.program import (ARG_DOMAINS, KINDS, MAX_PROCS, OPS, PROTS, Op, Program,
                          ThreadSpec, fit_mapping)
from fuzz.program.textcodec import format_program
from model.pgtable import USER_PAGES

#: operations in shrink order: Hypothesis shrinks a choice towards the first
OP_NAMES: tuple[str, ...] = ("read", "write", "fork", "pin", "unpin", "devread", "devwrite",
                             "mprotect", "dontneed", "pageout", "reclaim", "munmap", "mmap",
                             "vmsplice", "piperead", "clear_refs", "procmem", "exit",
                             "signal", "wait", "waitpid")
assert set(OP_NAMES) == set(OPS)

#: the default draw: operations repeated by their weight in generated programs
#: (fuzz/program/generate.py), in shrink order (Hypothesis samples uniformly)
WEIGHTED_OPS: tuple[str, ...] = tuple(name for name in OP_NAMES
                                      for _ in range(max(1, (OP_WEIGHTS[name] + 1) // 2)))

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


def _values(name: str) -> tuple:
    return PREFERRED.get(name) or tuple(ARG_DOMAINS.get(name, ()))


_POPULATE = st.sampled_from(PREFERRED["populate"])
_KIND = st.sampled_from(KINDS)
_PROT = st.sampled_from(PROTS)
_ARGS = {name: st.sampled_from(_values(name)) for name in ARG_DOMAINS if name not in ("va", "npages")}
_ARGS["npages"] = st.integers(1, 4)


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


def _arg_strategy(name: str, vas):
    return st.sampled_from(vas) if name == "va" else _ARGS[name]


@st.composite
def operations(draw, vas=tuple(range(USER_PAGES)), names=OP_NAMES):
    """One operation; ``va`` arguments are drawn from ``vas`` (the mapped pages)."""
    name = draw(st.sampled_from(names))
    return Op(name, tuple(draw(_arg_strategy(a, vas)) for a in OPS[name]))


@st.composite
def programs(draw, *, max_threads: int = 3, max_ops: int = 6, ops=WEIGHTED_OPS,
             faults: bool = False, schedule: bool = True):
    """Programs: mappings, threads of process 0, threads of forked children, a schedule.

    Within the byte form's bounds (at most 4 threads and 16 operations per
    thread), so every drawn program can join a coverage campaign's corpus.

    ``ops`` restricts the operations drawn (a name may repeat, to weight it); ``faults`` lets the draw turn on
    allocation-failure injection; ``schedule=False`` leaves the schedule empty
    (the non-preemptive run).
    """
    max_threads = min(max_threads, MAX_THREADS)
    max_ops = min(max_ops, MAX_OPS)
    maps = draw(mappings())
    vas = tuple(va for m in maps for va in range(m.va, m.va + m.npages))
    op = operations(vas, tuple(ops))
    threads = [ThreadSpec(0, tuple(draw(st.lists(op, min_size=1, max_size=max_ops))))
               for _ in range(draw(st.integers(1, max_threads)))]
    forked = sorted({o.args[0] for t in threads for o in t.ops if o.name == "fork"})
    for child in forked:
        for _ in range(draw(st.integers(0, 2))):
            if len(threads) < MAX_THREADS:
                threads.append(ThreadSpec(child, tuple(draw(st.lists(op, max_size=max_ops)))))
    sched = draw(schedules()) if schedule else ()
    injection = draw(st.booleans()) if faults else False
    return Program(maps, tuple(threads), sched, injection)


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
SLOT = st.sampled_from(ARG_DOMAINS["slot"][:2])


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

    def _append(self, index: int, name: str, *args) -> None:
        i = index % len(self.threads)
        t = self.threads[i]
        self.threads[i] = ThreadSpec(t.pid, t.ops + (Op(name, args),))

    @rule(index=THREAD, write=st.booleans(), va=st.sampled_from((0, 1, 4)))
    def access(self, index, write, va):
        self._append(index, "write" if write else "read", va)

    @rule(index=THREAD, slot=SLOT, va=st.sampled_from((0, 1, 4)),
          access=st.sampled_from(ARG_DOMAINS["access"]), path=st.sampled_from(ARG_DOMAINS["path"]),
          life=st.sampled_from(ARG_DOMAINS["life"]))
    def pin(self, index, slot, va, access, path, life):
        self._append(index, "pin", slot, va, access, path, life)

    @rule(index=THREAD, slot=SLOT, op=st.sampled_from(("devread", "devwrite", "unpin")))
    def use_pin(self, index, slot, op):
        self._append(index, op, slot)

    @rule(index=THREAD, op=st.sampled_from(("mprotect-r", "mprotect-rw", "dontneed", "pageout",
                                            "reclaim", "munmap")),
          va=st.sampled_from((0, 1, 4)))
    def memory(self, index, op, va):
        if op.startswith("mprotect"):
            self._append(index, "mprotect", va, 1, op.split("-")[1])
        elif op == "reclaim":
            self._append(index, "reclaim", va)
        else:
            self._append(index, op, va, 1)

    @rule(index=THREAD, op=st.sampled_from(("vmsplice", "piperead", "clear_refs", "procmem")),
          va=st.sampled_from((0, 1, 4)), pid=st.integers(0, MAX_PROCS - 1))
    def kernel_access(self, index, op, va, pid):
        args = {"vmsplice": (va,), "procmem": (pid % self.next_child, va)}.get(op, ())
        self._append(index, op, *args)

    @precondition(lambda self: self.next_child < MAX_PROCS)
    @rule(index=THREAD)
    def fork(self, index):
        """Fork from a thread; the child gets a thread of its own."""
        self._append(index, "fork", self.next_child)
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
