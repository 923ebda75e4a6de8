"""A campaign worker process: runs slices and reports what it found.

A worker holds a Session for the whole campaign (its corpus and features
grow with every slice and every sync). It reads ``SliceRequest``s from its
connection and answers each with a ``SliceResult``; ``None`` stops it. It
never writes the corpus or crash directories: only the coordinator does.
An exception in a strategy is reported in the result, and the worker goes on.
"""

from __future__ import annotations

import random
import traceback
from dataclasses import replace

from fuzz.search.interrupt import ignore_sigint
from fuzz.search.session import Session
from fuzz.search.strategies import STRATEGIES


def slice_rng(seed: int, slot: int, slice_no: int) -> random.Random:
    """The rng of one slice: a function of the campaign seed, the slot and the slice."""
    return random.Random(f"cowfuzz:{seed}:{slot}:{slice_no}")


def worker_main(slot: int, variant: str, designs: tuple, workdir: str, conn) -> None:
    """Process entry point (multiprocessing target). ``designs`` are the user's design
    specs the command line declared; ``workdir`` belongs to the coordinator, which
    removes it even when the worker is killed."""
    ignore_sigint()                                     # the coordinator handles Ctrl-C
    from model.variants import get_variant, load_designs
    load_designs(designs)
    variant_cls = get_variant(variant)
    session = Session(variant_cls, variant, workdir)
    session.on_heartbeat = lambda beat: conn.send(replace(beat, slot=slot))
    strategy = None
    try:
        while True:
            try:
                req = conn.recv()
            except EOFError:
                return
            if req is None:
                return
            info = STRATEGIES[req.strategy]
            if strategy is None:                # one strategy object for the worker's life
                strategy = info.create(session, req.options)
            run_slice(session, strategy, info, req, slot)
            conn.send(session.result(slot))
    finally:
        if strategy is not None:
            strategy.close()


def run_slice(session, strategy, info, req, slot: int) -> None:
    """One slice: take in what the campaign found elsewhere, then search."""
    session.begin_slice(req.slice_no, req.seconds, req.runs)
    session.sync(req.corpus_delta, req.feature_delta, replay=not info.replays_corpus)
    try:
        strategy.run_slice(slice_rng(req.seed, slot, req.slice_no))
    except Exception:
        session.errors.append(traceback.format_exc())
