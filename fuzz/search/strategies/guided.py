"""Guided: a corpus of programs guided by interleaving and state coverage, re-run
with fresh interleavings and mutated where the interleavings conflict
(fuzz/search/guided/). Pure Python: no instrumentation of ``model/``, so an
execution costs little more than a random one.

Each iteration runs a pair program (``pair_program``: two threads of one
process racing one operation each on a page in one state of the COW
lifecycle, the first thread then loading it (the second, half the time,
loading it before its operation) -- the shape of most races, and
a few times cheaper to run than anything else; its two operations drawn by
how often they met so far, fuzz/search/guided/pairs.py), generates a program (as
random does) or picks a corpus entry by its energy -- the rarity of its
features -- and makes one of:

* a fresh interleaving: the entry's recorded schedule cut at a random
  decision, a newly seeded walk after it;
* a schedule aimed at a conflict the entry reached (swap, delay, tighten);
* a program mutation (fuzz/program/mutate.py), its schedule left to the walk;
* its program sliced to the operations that took part in a conflict.

A pair program whose two raced operations met (each had a step in a conflict:
pairs.py) takes the next ``FOCUS`` pair draws, each run under a fresh
interleaving. Whether two operations meet turns on the page's state and
their arguments as much as on which operations they are (a reclaim and a
MADV_DONTNEED of different pages never do), and a race with a narrow window
needs tens of interleavings of the one program that reaches it; drawn afresh
each time, the same operations come back in another state or on another
page. The focus stays within the pair share: spent outside it, on top, it
took executions from the corpus and lost dirty-cow and swapin-reuse-mapcount
(docs/benchmarks.md). Its runs count in the pair table like any other.

One execution in ten (``RANDOM``) is the random strategy's instead: a random
program of up to six operations per thread under a random walk, its
features not computed and nothing of it kept. Bugs that need a long
sequence of operations more than a narrow interleaving (a fork, the child's
vmsplice and munmap, then the parent's write) come that way at a tenth of
random's rate, on top of what the rest of the engine finds. Generated
programs of that size, kept in the corpus, did worse on the TLB flush-miss
races (docs/benchmarks.md).

The sampler past the prefix is drawn per execution: random walks of
several switch probabilities (some let a task run long uninterrupted,
others switch often), PCT with its change points spread over the decisions
the input will make (its corpus entry's, or the average of its kind: pair
or generated; a change point past the end is lost), and URW, which weighs
a task by the state-changing steps it has left (so a short operation's steps
fall anywhere inside a long one, such as a fork, instead of mostly before
it). An execution that reaches a feature no earlier one did joins the
corpus with the schedule it followed, which replays it exactly; so does one
that reaches a known feature in far fewer steps than the entry that owns it
(libFuzzer's -reduce_inputs), so that features drift to small programs. Options: ``pair``, the share of pair
programs; ``generate``, the share of fresh programs among the rest; ``urw``
(0 leaves URW out of the samplers); ``pairs`` (0 draws raced pairs uniformly);
``random``, the random strategy's share; ``focus``, the pair draws a met pair program
takes.

Entries other workers found reach the engine through the session's
background replay, which runs them with the engine's probe (``replayer``)
so that each joins with its record; when the campaign replaces the corpus
(distillation), the engine starts a new one.
"""

from __future__ import annotations

from dataclasses import replace

from fuzz.program.generate import pair_program, random_program
from fuzz.program.mutate import PROGRAM_MUTATION_WEIGHTS, crossover, delete_op, mutate
from fuzz.program.program import ThreadSpec
from fuzz.runtime.executor import execute, thread_name
from fuzz.runtime.urw import EventCounts, URWChooser
from fuzz.search.guided.corpus import Corpus, Entry
from fuzz.search.guided.pairs import PairTable, met
from fuzz.search.guided.probe import Probe
from fuzz.search.guided.schedules import targeted
from fuzz.search.strategies.random_walk import random_execution

#: probability of generating a fresh program instead of picking an entry
GENERATE = 0.2
#: what to do with a picked entry: (kind, weight)
MOVES = (("reseed", 4), ("targeted", 3), ("mutate", 3), ("crossover", 1), ("slice", 1))
#: the samplers past the prefix, drawn per execution: random walks that switch task
#: with these probabilities, PCT of these depths (switch 0), and URW (depth "urw")
SAMPLERS = ((0.1, 0), (0.2, 0), (0.3, 0), (0.5, 0), (0.0, 2), (0.0, 3), (0.0, 3),
            (0.0, "urw"), (0.0, "urw"))
#: operations per thread of a generated program: small programs leave the walk fewer
#: ways to miss a window; mutations grow the ones that matter
GENERATED_OPS = 4
#: probability of a pair program (two threads racing one operation each on one page,
#: fuzz/program/generate.py) instead of anything else: a few times cheaper to run than
#: the rest, and the shape of most races
PAIR = 0.4
#: mutated programs keep at most this many operations: bigger programs cost more per
#: execution and rarely matter
MAX_PROGRAM_OPS = 12
#: share of executions spent as the random strategy spends them (a random program of up
#: to six operations per thread, a random walk), outside the corpus
RANDOM = 0.1
#: a pair program whose two raced operations met takes this many of the next pair draws,
#: each run under a fresh interleaving
FOCUS = 10


def _bounded(rng, program):
    while program.op_count() > MAX_PROGRAM_OPS:
        program = delete_op(rng, program)
    return program


def _slice(entry):
    """The entry's program with only the operations that took part in a conflict (and the
    forks): what the threads did apart from one another cannot change an interleaving.
    None if nothing would go. Threads stay, even empty, so that each keeps its name."""
    keep: dict[str, set] = {}
    for tid, k in entry.racing:
        name = entry.names.get(tid)
        if name is not None and k >= 0:
            keep.setdefault(name, set()).add(k)
    seen = set(entry.names.values())
    index: dict[int, int] = {}
    threads = []
    for spec in entry.program.threads:
        i = index.get(spec.pid, 0)
        index[spec.pid] = i + 1
        name = thread_name(spec.pid, i)
        if name not in seen:
            threads.append(spec)
            continue
        ks = keep.get(name, ())
        threads.append(ThreadSpec(spec.pid, tuple(op for j, op in enumerate(spec.ops)
                                                  if j in ks or op.name == "fork")))
    program = replace(entry.program, threads=tuple(threads), schedule=())
    return program if program.op_count() < entry.program.op_count() else None


class Guided:
    def __init__(self, session, options: dict):
        self.session = session
        self.generate = options.get("generate", GENERATE)
        self.corpus = Corpus()
        self.generation = session.corpus_generation   # of the corpus ours was built from
        self.moves = [m for m, w in MOVES for _ in range(w)]
        self.pair = options.get("pair", PAIR)
        self.random = options.get("random", RANDOM)
        self.focus = options.get("focus", FOCUS)
        #: a pair program whose operations met, and how many more runs it gets
        self._focused, self._focus_left = None, 0
        self.samplers = [s for s in SAMPLERS if s[1] != "urw" or options.get("urw", True)]
        #: decisions an execution makes, averaged per kind of fresh input: PCT spreads its
        #: change points over them
        self.decisions_made = {"pair": 10.0, "generated": 20.0}
        #: state-changing steps per operation, which URW weighs tasks by
        self.event_counts = EventCounts()
        #: which pairs of operations meet, learned from the pair programs run so far
        self.pairs = PairTable() if options.get("pairs", True) else None
        session.replayer = self._replay

    def _next_input(self, rng):
        """(program, prefix, source): the source is "pair", "generated" or the corpus entry
        the input comes from."""
        corpus = self.corpus
        if rng.random() < self.pair:
            if self._focus_left > 0:
                self._focus_left -= 1
                return self._focused, (), "pair"
            pair = self.pairs.draw(rng) if self.pairs is not None else None
            return pair_program(rng, pair=pair), (), "pair"
        if not len(corpus) or rng.random() < self.generate:
            return (random_program(rng, max_threads=3, max_ops=GENERATED_OPS, schedule_len=0),
                    (), "generated")
        entry = corpus.pick(rng)
        move = rng.choice(self.moves)
        if move == "targeted" and entry.conflicts:
            prefix = targeted(rng, entry.choices, entry.decisions, entry.tids,
                              rng.choice(entry.conflicts))
            if prefix is not None:
                return entry.program, prefix, entry
            move = "reseed"
        if move == "mutate":
            program = mutate(rng, entry.program, weights=PROGRAM_MUTATION_WEIGHTS)
            return _bounded(rng, program), (), entry
        if move == "slice":
            sliced = _slice(entry)
            if sliced is not None:
                return sliced, (), entry
            move = "crossover"
        if move == "crossover":
            other = corpus.pick(rng)
            return _bounded(rng, crossover(rng, entry.program, other.program)), (), entry
        return entry.program, entry.choices[:rng.randint(0, len(entry.choices))], entry

    def _replay(self, program):
        """A received entry, run once along its schedule (the session's replay): it joins
        the engine's corpus with its record."""
        probe = Probe(program.schedule, 0, switch=0.0)
        outcome = execute(program, self.session.variant_cls, probe)
        outcome.features = probe.features
        self.corpus.add(Entry(program, probe.features, probe))
        return outcome

    def run_slice(self, rng) -> None:
        session = self.session
        if self.generation != session.corpus_generation:     # the corpus was replaced
            self.generation = session.corpus_generation
            self.corpus = Corpus()
        while not session.done():
            if self.random and rng.random() < self.random:
                random_execution(session, rng, feedback=False)
                continue
            program, prefix, source = self._next_input(rng)
            switch, depth = rng.choice(self.samplers)
            fail = 0.05 if program.fault_injection else 0.0
            if depth == "urw":
                probe = Probe(prefix, rng.getrandbits(32), fail=fail)
                probe.urw = URWChooser(probe.rng, program, self.event_counts, fail=fail)
            else:
                expected = (len(source.decisions) if isinstance(source, Entry)
                            else self.decisions_made[source])
                probe = Probe(prefix, rng.getrandbits(32), switch=switch, pct_depth=depth,
                              k=max(2, round(expected) - len(prefix)), fail=fail)
            kept = len(session.corpus)
            outcome = session.execute(program, probe, own_features=True)
            self.corpus.count(outcome.features)
            if source == "pair":
                meeting = (self.pairs.record_run(program, probe) if self.pairs is not None
                           else met(program, probe))
                if meeting and self.focus and program is not self._focused:
                    self._focused, self._focus_left = program, self.focus
            if not isinstance(source, Entry):
                made = self.decisions_made[source]
                self.decisions_made[source] = made + (len(probe.decisions) - made) * 0.05
            if len(session.corpus) == kept and self.corpus.reduces(outcome.features, probe.steps):
                session.add(program.with_schedule(outcome.schedule), reason="smaller")
            if len(session.corpus) > kept:
                self.corpus.add(Entry(session.corpus[-1], outcome.features, probe))

    def close(self) -> None:
        pass
