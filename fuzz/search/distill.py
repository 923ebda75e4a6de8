"""Corpus distillation: the smallest subset of a corpus that keeps every feature.

As libFuzzer's ``-merge`` and ClusterFuzz's daily pruning: each entry runs
once (``execute(..., features=True)``, fuzz/runtime/features.py), and a
greedy set cover picks entries until every interleaving feature the corpus
reaches is reached by one of them -- each time the entry adding the most
features not yet kept, ties broken by the smaller program, then by the
content hash. Deterministic: the same corpus gives the same subset, in any
order, in any process.

``cowfuzz corpus minimize DIR`` runs it on a folder; a campaign runs it in a
process of its own (``Distiller``, at a lower CPU priority than the
workers) whenever its queue passes a bound, and always keeps
its seeds (the curated corpus): the cover starts from what they reach.
"""

from __future__ import annotations

import heapq
import os
import multiprocessing
from dataclasses import dataclass

from fuzz.program.textcodec import ParseError, parse_program
from fuzz.runtime.executor import execute
from fuzz.search.procs import die_with_parent, ignore_ctrl_c, signals_held, use_tmpdir
from fuzz.search.store import content_hash


@dataclass(frozen=True)
class Entry:
    key: str                      # what the caller knows it by (a content hash, a path)
    size: tuple                   # smaller first: (operations, schedule choices, text length)
    features: frozenset


def program_size(program, text: str) -> tuple:
    return (program.op_count(), len(program.schedule), len(text))


def measure(key: str, program, text: str, variant_cls) -> Entry:
    outcome = execute(program, variant_cls, features=True)
    return Entry(key, program_size(program, text), frozenset(outcome.features))


def greedy_cover(entries: list[Entry], covered=frozenset()) -> list[Entry]:
    """The entries that reach every feature of ``entries`` not in ``covered``, picked
    greedily (most new features first; then smaller; then key). Lazy: an entry's gain
    only shrinks as others are picked, so a stale gain at the top of the heap is
    recomputed and pushed back instead of rescanning every entry."""
    covered = set(covered)
    heap = [(-len(e.features - covered), e.size, e.key, i) for i, e in enumerate(entries)]
    heapq.heapify(heap)
    kept = []
    while heap:
        neg, size, key, i = heapq.heappop(heap)
        if neg == 0:
            break
        gain = len(entries[i].features - covered)
        if gain != -neg:
            if gain:
                heapq.heappush(heap, (-gain, size, key, i))
            continue
        kept.append(entries[i])
        covered |= entries[i].features
    return kept


def distill_texts(texts: list[str], seeds: list[str], variant_cls) -> list[str]:
    """The content hashes of the ``texts`` to keep so that, with ``seeds`` (all kept), every
    feature of either is reached. A text that does not parse is dropped."""
    covered = set()
    for text in seeds:
        try:
            covered |= execute(parse_program(text, "<seed>"), variant_cls,
                               features=True).features
        except ParseError:
            continue
    entries = []
    for text in texts:
        try:
            program = parse_program(text, "<queue>")
        except ParseError:
            continue
        entries.append(measure(content_hash(text), program, text, variant_cls))
    return [e.key for e in greedy_cover(entries, covered)]


# -- in the background of a campaign ----------------------------------------------------------
_MP = multiprocessing.get_context("spawn")
#: the distiller's niceness: below the workers, but not so low that a loaded machine
#: starves it (at 19, on a machine busy with other work, the queue outgrew it)
DISTILLER_NICE = 5


def distiller_main(variant: str, designs: tuple, workdir: str, conn) -> None:
    """Process entry point: distill each (texts, seeds) received, until the connection
    closes. It dies with the coordinator; a Ctrl-C is the coordinator's to handle."""
    parent = multiprocessing.parent_process()
    die_with_parent(parent.pid if parent is not None else None)
    ignore_ctrl_c()
    use_tmpdir(workdir)
    os.nice(DISTILLER_NICE)
    from model.variants import get_variant, load_designs
    load_designs(designs)
    variant_cls = get_variant(variant)
    while True:
        try:
            texts, seeds = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(distill_texts(texts, seeds, variant_cls))
        except OSError:
            return


class Distiller:
    """One process beside the workers that distills a snapshot of the queue; the
    coordinator polls it and stays the only writer of the queue."""

    def __init__(self, variant: str, designs: tuple, workdir: str):
        self.variant = variant
        self.designs = designs
        self.workdir = workdir
        self.proc = None
        self.conn = None
        self.snapshot: list[str] | None = None     # the texts being distilled

    @property
    def running(self) -> bool:
        return self.snapshot is not None

    def start(self, texts: list[str], seeds: list[str]) -> None:
        if self.proc is None:
            parent, child = _MP.Pipe()
            self.proc = _MP.Process(target=distiller_main,
                                    args=(self.variant, self.designs, self.workdir, child),
                                    name="cowfuzz-distiller", daemon=True)
            with signals_held():
                self.proc.start()
            child.close()
            self.conn = parent
        self.snapshot = list(texts)
        try:
            self.conn.send((self.snapshot, list(seeds)))
        except OSError:
            self.stop()

    def poll(self):
        """None while running (or idle); then (snapshot, kept hashes, None), or
        (snapshot, None, why) if the process died."""
        if self.snapshot is None:
            return None
        try:
            if self.conn.poll():
                kept = self.conn.recv()
                snapshot, self.snapshot = self.snapshot, None
                return snapshot, kept, None
        except (EOFError, OSError):
            pass
        if self.proc.is_alive():
            return None
        snapshot = self.snapshot
        why = f"the distiller process died (exit status {self.proc.exitcode})"
        self.stop()
        return snapshot, None, why

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
            self.conn.close()
        self.proc = self.conn = self.snapshot = None
