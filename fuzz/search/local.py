"""Workers as local processes: one per job, a pipe each (fuzz/search/transport.py).

Each process runs ``worker_main`` (fuzz/search/worker.py) with a scratch
folder of the campaign's as its TMPDIR and its own journal. Processes start
with SIGINT and SIGTERM held (fuzz/search/procs.py) and die with the
coordinator; SIGTERM ends a worker's slice at its next execution.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import time
from pathlib import Path

from fuzz.search.procs import signals_held
from fuzz.search.session import Heartbeat
from fuzz.search.transport import Lost
from fuzz.search.worker import worker_main

_MP = multiprocessing.get_context("spawn")


class _Process:
    def __init__(self):
        self.proc = None
        self.conn = None
        self.workdir: Path | None = None


class LocalWorkers:
    def __init__(self, count: int, variant: str, designs: tuple, folder):
        self.count = count
        self.variant = variant
        self.designs = designs
        self.folder = folder                 # the CampaignFolder: scratch space and journals
        self.procs = [_Process() for _ in range(count)]

    def describe(self) -> str:
        return f"{self.count} job(s)"

    def start(self, slot: int) -> None:
        p = self.procs[slot]
        if p.conn is not None:
            p.conn.close()
        if p.workdir is not None:
            shutil.rmtree(p.workdir, ignore_errors=True)    # a dead worker's leftovers
        p.workdir = self.folder.work / f"worker{slot}"
        p.workdir.mkdir(parents=True, exist_ok=True)
        parent, child = _MP.Pipe()
        p.proc = _MP.Process(target=worker_main,
                             args=(slot, self.variant, self.designs, str(p.workdir), child,
                                   str(self.folder.journal(slot))),
                             name=f"cowfuzz-worker-{slot}", daemon=True)
        with signals_held():
            p.proc.start()
        child.close()
        p.conn = parent

    def send(self, slot: int, request) -> bool:
        try:
            self.procs[slot].conn.send(request)
            return True
        except (BrokenPipeError, OSError):
            return False

    def wait(self, busy, timeout, waitables):
        ready_for = {}
        for slot in busy:
            p = self.procs[slot]
            ready_for[p.conn] = slot
            ready_for[p.proc.sentinel] = slot
        ready = multiprocessing.connection.wait(list(ready_for) + list(waitables),
                                                timeout=timeout)
        messages, done = [], set()
        for r in ready:
            slot = ready_for.get(r)
            if slot is None or slot in done:
                continue
            p = self.procs[slot]
            try:
                message = p.conn.recv() if r is p.conn or p.conn.poll() else None
            except (EOFError, OSError):
                message = None
            if message is None:
                if p.proc.is_alive():
                    continue
                p.proc.join(timeout=1)
                done.add(slot)
                messages.append(Lost(slot, f"died (exit status {p.proc.exitcode})"))
                continue
            if not isinstance(message, Heartbeat):
                done.add(slot)               # a result: nothing more from it this slice
            messages.append(message)
        return messages

    def stop_slices(self, busy) -> None:
        for slot in busy:
            proc = self.procs[slot].proc
            if proc is not None and proc.is_alive():
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def stop(self, grace: float) -> None:
        for p in self.procs:
            if p.conn is None or p.conn.closed:
                continue
            try:
                p.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + grace
        for p in self.procs:
            if p.proc is not None:
                p.proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        for p in self.procs:
            if p.proc is not None and p.proc.is_alive():
                p.proc.kill()
                p.proc.join(timeout=5)
