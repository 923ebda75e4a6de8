"""Coverage: libFuzzer (atheris) over the byte form, one harness process per worker.

The worker starts ``fuzz/search/harness.py`` under libFuzzer once, on a private
corpus directory, and keeps it running across slices (restarting it if it
dies); a slice is the interval between two harvests:

1. corpus entries the worker received from the campaign are written into
   that directory, encoded (fuzz/program/bytecodec.py), at most
   ``FEED_BATCH`` at each poll; libFuzzer's ``-reload`` picks them up within a
   second. A resumed campaign's corpus is so replayed in the background of
   fuzzing instead of before it;
2. libFuzzer fuzzes: line coverage of ``model/`` plus the interleaving
   features as extra counters, with the structure-aware mutator;
3. at the end of the slice the units libFuzzer added are decoded and kept
   as corpus entries (it judged them new), the violations it recorded
   (first per signature, one JSON line each) are reported, and the run
   count and coverage counter are read from its status lines.

Restarting libFuzzer every slice would replay its whole corpus each time
(a third of a 10 s slice once the corpus has a thousand entries). It is
restarted on an empty directory when the campaign replaced the corpus (it
distilled its queue), which also bounds what libFuzzer keeps in memory. The
harness is started through its console script, never ``python -m``:
libFuzzer's -fork/-jobs/-merge modes re-execute argv[0].
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from fuzz.program.bytecodec import decode, encode
from fuzz.program.generate import random_program
from fuzz.program.textcodec import ParseError, parse_program
from fuzz.search.procs import die_with_parent

INITIAL_SEEDS = 16
POLL_SECONDS = 0.5
#: received entries handed to libFuzzer at each poll (it runs them at its next reload)
FEED_BATCH = 100
_STATUS = re.compile(rb"^#(\d+)\s.*\bcov: (\d+)", re.M)


def harness_command() -> list[str]:
    """The ``cowfuzz-libfuzzer`` console script of this interpreter's installation (an
    executable: libFuzzer's -fork/-jobs/-merge modes re-execute argv[0])."""
    script = Path(sys.executable).with_name("cowfuzz-libfuzzer")
    if script.exists():
        return [str(script)]
    found = shutil.which("cowfuzz-libfuzzer")
    if found is None:
        raise RuntimeError("the cowfuzz-libfuzzer command is missing: install cowfuzz "
                           "(pip install .) to use the coverage strategy")
    return [found]


class LibFuzzer:
    """The worker's libFuzzer process, its corpus directory, and what was read from it."""

    def __init__(self, session, rng):
        self.session = session
        self.workdir = Path(session.workdir)
        self.dir = self.workdir / "libfuzzer-corpus"
        _remove_in_background(self.dir)                   # a previous libFuzzer's
        for old in [*self.workdir.glob("libfuzzer-*.log"), *self.workdir.glob("results-*.jsonl")]:
            old.unlink(missing_ok=True)
        self.dir.mkdir(parents=True)
        self.known: set[str] = set()
        self.generation = session.corpus_generation   # of the corpus the directory holds
        self.rng = rng
        self.proc = None
        self.run_no = 0
        self.counted = self.slice_base = self.results_offset = 0
        if not session.corpus:
            for _ in range(INITIAL_SEEDS):
                self.put(encode(random_program(rng, max_threads=3, max_ops=6)))
        self.feed()

    # -- the corpus directory ----------------------------------------------------------
    def put(self, data: bytes) -> None:
        name = hashlib.sha1(data).hexdigest()
        if name not in self.known:
            tmp = self.workdir / f".{name}"
            tmp.write_bytes(data)
            os.replace(tmp, self.dir / name)
            self.known.add(name)

    def feed(self) -> None:
        """Hand libFuzzer the next received entries."""
        session = self.session
        n = min(FEED_BATCH, len(session.to_replay))
        for _ in range(n):
            self.put(encode(session.to_replay.popleft()))
        session.replayed += n

    def harvest(self) -> None:
        """Keep the units libFuzzer added since the last harvest."""
        session = self.session
        for name in sorted(set(os.listdir(self.dir)) - self.known):
            self.known.add(name)
            try:
                data = (self.dir / name).read_bytes()
            except OSError:
                continue
            session.keep(decode(data))

    # -- the process -------------------------------------------------------------------
    @property
    def log(self) -> Path:
        return self.workdir / f"libfuzzer-{self.run_no}.log"

    @property
    def results(self) -> Path:
        return self.workdir / f"results-{self.run_no}.jsonl"

    def start(self) -> None:
        self.run_no += 1
        self.counted = 0                       # executions of this process counted so far
        self.slice_base = 0                    # ... when the current slice began
        self.results_offset = 0
        s = self.session
        designs = [arg for spec in s.designs for arg in ("--design", spec)]
        cmd = [*harness_command(), "--variant", s.variant_name, *designs,
               "--results", str(self.results), f"-seed={self.rng.randrange(1, 2**31)}",
               "-reload=1", "-timeout=60", "-rss_limit_mb=4096", "-max_len=4096",
               "-len_control=0",           # the custom mutator bounds program size itself
               "-print_final_stats=1", f"-artifact_prefix={self.workdir}/", str(self.dir)]
        with open(self.log, "wb") as out:
            # its own session: a Ctrl-C in the terminal reaches the worker, which stops it
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
                                         start_new_session=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def poll(self) -> None:
        """Count executions since the last poll; restart libFuzzer if it died (not when the
        campaign is stopping)."""
        statuses = _STATUS.findall(_tail(self.log, 8192))
        if statuses:
            total = int(statuses[-1][0])
            self.session.runs += max(0, total - self.counted)
            self.counted = max(self.counted, total)
            self.session.edges = max(self.session.edges, int(statuses[-1][1]))
        if self.session.stopping:
            return
        if self.proc is not None and self.proc.poll() is not None:
            self.read_results()
            tail = " | ".join(_tail(self.log, 600).decode(errors="replace").strip().splitlines()[-3:])
            if shutil.disk_usage(self.workdir).free < 1 << 16:
                tail = f"no space left in {self.workdir}"
            self.session.errors.append(f"libFuzzer exited with status {self.proc.returncode}, "
                                       f"restarted: {tail}")
            self.proc = None
        if self.proc is None:
            self.start()

    def read_results(self) -> None:
        """The violations libFuzzer's harness appended since the last read."""
        try:
            with open(self.results, "rb") as f:
                f.seek(self.results_offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        self.results_offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            try:
                record = json.loads(line)
                program = parse_program(record["program"], str(self.results))
            except (ValueError, KeyError, ParseError):
                continue
            self.session.record(record["oracle"], record["signature"], program,
                                run=max(0, record.get("run", 0) - self.slice_base),
                                at=record.get("monotonic"))


def _remove_in_background(folder: Path) -> None:
    """Move ``folder`` aside and remove it in a thread: thousands of unlinks can take many
    seconds (a disk that discards freed blocks), which would be a pause in fuzzing."""
    if not folder.exists():
        return
    trash = folder.with_name(f".trash-{folder.name}-{time.monotonic_ns()}")
    try:
        os.rename(folder, trash)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return
    threading.Thread(target=shutil.rmtree, args=(trash, True), name="cowfuzz-trash",
                     daemon=True).start()


def _tail(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - n))
            return f.read()
    except FileNotFoundError:
        return b""


class CoverageGuided:
    """The worker's libFuzzer process starts at the first slice and lives until close()."""

    def __init__(self, session, options: dict):
        self.session = session
        self.libfuzzer: LibFuzzer | None = None

    def run_slice(self, rng) -> None:
        session = self.session
        lf = self.libfuzzer
        if lf is not None and lf.generation != session.corpus_generation:
            lf.read_results()
            lf.stop()                       # the corpus was replaced: start afresh on it
            lf = None
        if lf is None:
            lf = self.libfuzzer = LibFuzzer(session, rng)
        lf.slice_base = lf.counted
        lf.feed()
        lf.poll()
        while not session.done():
            try:
                lf.proc.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            lf.poll()
            lf.read_results()
            lf.feed()
            session.beat()
        lf.harvest()
        lf.read_results()

    def close(self) -> None:
        if self.libfuzzer is not None:
            self.libfuzzer.stop()
