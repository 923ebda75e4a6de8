"""A campaign worker process: runs slices and reports what it found.

A worker holds a Session for the whole campaign (its corpus and features
grow with every slice and every sync). It reads ``SliceRequest``s from its
connection and answers each with a ``SliceResult``; ``None`` stops it. It
never writes the corpus or crash directories: only the coordinator does.
An exception in a strategy is reported in the result, and the worker goes on.

Nothing it finds is lost: a new violation ends the slice (the result goes
out at once), and before that it is appended, flushed and fsynced, to the
worker's journal (``campaigns/<variant>/found/worker-<slot>.jsonl``), from
which the coordinator saves whatever it did not receive -- at the end of
the campaign, or at the start of the next one after a SIGKILL.

SIGTERM and SIGINT (a Ctrl-C reaches the whole process group) end the
current slice at the next execution; the worker sends what it has and
exits, quietly. It dies with the coordinator (fuzz/search/procs.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import traceback
from dataclasses import asdict, replace

from fuzz.search.procs import die_with_parent, release_signals, use_tmpdir
from fuzz.search.session import Session, SliceResult
from fuzz.search.strategies import STRATEGIES


def slice_rng(seed: int, slot: int, slice_no: int) -> random.Random:
    """The rng of one slice: a function of the campaign seed, the slot and the slice."""
    return random.Random(f"cowfuzz:{seed}:{slot}:{slice_no}")


class _Stop(Exception):
    """A stop signal arrived while the worker was waiting for a slice."""


class Journal:
    """The worker's append-only record of what it found, written before it is sent."""

    def __init__(self, path: str | None, slot: int):
        self.path = path
        self.slot = slot
        self.error: str | None = None

    def write(self, found, req) -> None:
        if self.path is None or self.error is not None:
            return
        record = {**asdict(found), "slot": self.slot, "slice": req.slice_no,
                  "execution": req.runs_before + found.run,
                  "campaign_seconds": round(req.elapsed + max(found.seconds, 0.0), 1)}
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            self.error = f"cannot write the journal {self.path}: {exc.strerror or exc}"


def worker_main(slot: int, variant: str, designs: tuple, workdir: str, conn,
                journal: str | None = None) -> None:
    """Process entry point (multiprocessing target). ``designs`` are the user's design
    specs the command line declared; ``workdir`` (this process's TMPDIR) belongs to the
    coordinator, which removes it even when the worker is killed; ``journal`` is the
    file this worker appends its findings to."""
    parent = multiprocessing.parent_process()
    die_with_parent(parent.pid if parent is not None else None)
    use_tmpdir(workdir)
    state = {"session": None, "in_slice": False, "leaving": False}

    def stop(signum, frame):
        if state["session"] is not None:
            state["session"].stopping = True
        if not state["in_slice"] and not state["leaving"]:
            state["leaving"] = True
            raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner = None
    try:
        release_signals()
        runner = SliceRunner(slot, variant, designs, workdir, journal)
        state["session"] = runner.session
        runner.session.on_heartbeat = lambda beat: conn.send(replace(beat, slot=slot))
        while not runner.session.stopping:
            req = conn.recv()
            if req is None:
                return
            state["in_slice"] = True
            conn.send(runner.run(req))
            state["in_slice"] = False
    except (_Stop, EOFError, BrokenPipeError, ConnectionResetError):
        return                                  # stopped, or the coordinator is gone
    finally:
        state["leaving"] = True                 # a second signal changes nothing now
        if runner is not None:
            runner.close()


class SliceRunner:
    """What a worker is, whatever carries its messages (a local process, a Ray actor): a
    Session and one strategy object for the worker's life, and its journal."""

    def __init__(self, slot: int, variant: str, designs: tuple, workdir: str,
                 journal: str | None = None):
        from model.variants import get_variant, load_designs
        load_designs(designs)
        self.slot = slot
        self.session = Session(get_variant(variant), variant, workdir)
        self.journal = Journal(journal, slot)
        self.strategy = None

    def run(self, req) -> SliceResult:
        """One slice: take in what the campaign found elsewhere, then search."""
        session = self.session
        record = self.journal
        session.on_found = lambda found: record.write(found, req)
        info = STRATEGIES[req.strategy]
        if self.strategy is None:               # one strategy object for the worker's life
            self.strategy = info.create(session, req.options)
        session.begin_slice(req.slice_no, req.seconds, req.runs)
        session.sync(req.corpus_delta, req.feature_delta, replay=not info.replays_corpus,
                     reset=req.reset)
        try:
            self.strategy.run_slice(slice_rng(req.seed, self.slot, req.slice_no))
        except Exception:
            session.errors.append(traceback.format_exc())
        if record.error is not None:
            session.errors.append(record.error)
            record.error, record.path = None, None    # said once; no journal from now on
        return session.result(self.slot)

    def close(self) -> None:
        if self.strategy is not None:
            self.strategy.close()
            self.strategy = None
