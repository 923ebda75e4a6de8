"""Exhaustive: small programs, smallest first, each under every schedule up to a bound.

Enumerates every program of 2, then 3, then 4 operations over a small
vocabulary (the operation table's, fuzz/program/ops.py: two threads and a
forked child, on an anon page and a file page), each explored
(fuzz/triage/explore.py) under every schedule up to 1 and then 2
preemptions; small corpus programs (the user's seeds) come first. Explorations resume across slices.
"""

from __future__ import annotations

import itertools
import random

from fuzz.program.ops import forked_child, vocabulary
from fuzz.program.program import Mapping, Program, ThreadSpec
from fuzz.program.textcodec import format_program
from fuzz.triage.explore import exploration


# -- the campaign strategy: programs by size, each under every schedule up to a bound -------

#: the address space of enumerated programs: an anon page written before the threads
#: start, and a private file page read in (the vocabulary's addresses, 0 and 4)
SMALL_MAPPINGS = (Mapping(0, 1, "anon", "rw", 0, "write"), Mapping(4, 1, "file", "rw", 0, "read"))

#: (operations in total, preemption bound), cheapest first
STAGES = ((2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2))


def small_programs(n: int, ops):
    """Every program of ``n`` operations over two threads of process 0 (one or more
    each) and, when one of them forks, the child's thread (zero or more)."""
    for c in range(n - 1):
        for a in range(1, n - c):
            b = n - c - a
            for ops_a in itertools.product(ops, repeat=a):
                for ops_b in itertools.product(ops, repeat=b):
                    forks = any(forked_child(o) is not None for o in ops_a + ops_b)
                    if c and not forks:
                        continue
                    for ops_c in itertools.product(ops, repeat=c):
                        threads = [ThreadSpec(0, ops_a), ThreadSpec(0, ops_b)]
                        if c:
                            threads.append(ThreadSpec(1, ops_c))
                        yield Program(SMALL_MAPPINGS, tuple(threads))


def campaign_programs(seed: int, worker: int, workers: int):
    """(program, bound) in stage order; the vocabulary order is a permutation fixed by
    the campaign seed, and worker w of W takes every W-th program."""
    ops = list(vocabulary())
    random.Random(f"cowfuzz-exhaustive:{seed}").shuffle(ops)
    index = 0
    for n, bound in STAGES:
        for program in small_programs(n, ops):
            if index % workers == worker:
                yield program, bound
            index += 1


class Exhaustive:
    """Explorations resume across slices, so none is cut short."""

    def __init__(self, session, options: dict):
        self.session = session
        self.bound = options.get("bound", 2)
        self.enumeration = campaign_programs(options.get("seed", 0), options.get("worker", 0),
                                             options.get("workers", 1))
        self.corpus_cursor = 0          # corpus programs looked at so far
        self.generation = session.corpus_generation
        self.explored: set[str] = set()
        self.exploring = None           # the exploration in progress (a generator)

    def _next_exploration(self):
        """The next (program, bound) to explore: small corpus programs not explored yet
        first (the user's seeds), then the enumeration."""
        corpus = self.session.corpus
        if self.generation != self.session.corpus_generation:   # the corpus was replaced
            self.generation = self.session.corpus_generation
            self.corpus_cursor = 0
        while self.corpus_cursor < len(corpus):
            program = corpus[self.corpus_cursor].with_schedule(())
            self.corpus_cursor += 1
            text = format_program(program)
            if program.op_count() <= 6 and text not in self.explored:
                self.explored.add(text)
                return program, self.bound
        return next(self.enumeration, (None, 0))

    def run_slice(self, rng) -> None:
        session = self.session
        while not session.done():
            if self.exploring is None:
                program, bound = self._next_exploration()
                if program is None:
                    return                   # every stage explored
                self.exploring = exploration(program, bound, session.execute)
            if next(self.exploring, None) is None:
                self.exploring = None

    def close(self) -> None:
        pass
