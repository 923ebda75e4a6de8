"""The campaign's files: its own folder, corpus entries and crash folders.

Three places, kept apart:

* corpus/<variant>/ -- the curated regression corpus (hand-written seeds,
  kept reproducers, each with ``expect`` lines). A campaign only reads it.
* campaigns/<variant>/ -- the campaign's own state, git-ignored
  (``CampaignFolder``): ``queue/<sha1 of the canonical text>.cow``, the
  entries it kept; ``work/``, the scratch space of its worker and
  minimizer processes (their TMPDIR); ``found/``, what the workers found,
  journaled before they send it; ``.lock``.
* crashes/<variant>/<oracle>-<hash>/ -- signature.txt, input.cow (as found),
  trace.txt (of the input, then of the reproducer), token.txt, and
  repro.cow once minimization is done.

Only the campaign coordinator writes the queue and the crash folders, and
one campaign at a time holds a campaign folder and a crash folder (an
flock each; a second campaign is refused). Every file is written to a
temporary name and renamed into place (a crash folder is built under a
temporary name and renamed whole), so a campaign killed at any moment,
SIGKILL included, leaves either the complete file or nothing; the next
campaign on the folder removes the temporary names and ``work/``.

A folder that cannot be written is a ``DiskError`` with one line naming it:
before fuzzing starts (``check_writable``), or when a write fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from fuzz.triage.signature import signature_slug
from fuzz.program.textcodec import ParseError, format_program, read_input, read_program


class DiskError(Exception):
    """A folder the campaign cannot write (read-only, full, not a folder); str() is one
    line naming it."""


def disk_error(path, exc: OSError) -> DiskError:
    return DiskError(f"{path}: cannot write: {exc.strerror or exc}")


def check_writable(directory: Path) -> None:
    """Create ``directory`` and write a file in it, or raise DiskError: a campaign finds
    out before it fuzzes, not at its first finding."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe.{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        raise disk_error(directory, exc) from None


#: modes of what the campaign writes (temporary files start private: mkstemp, mkdtemp)
FILE_MODE, DIR_MODE = 0o644, 0o755


def atomic_write(path: Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` to a temporary file and rename it into place.

    The rename alone survives SIGKILL; ``durable`` also fsyncs, for what must
    survive a machine crash (crash files), not for corpus entries.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


LOCK_NAME = ".lock"


class Busy(Exception):
    """Another campaign holds the folder."""


class FolderLock:
    """An flock on ``directory/.lock``, held while the process lives (the kernel drops it
    when the process dies, SIGKILL included). The holder's pid is written in the file,
    for the message a second campaign gets."""

    def __init__(self, directory: Path, what: str):
        self.directory = Path(directory)
        self.what = what
        self.file = None

    def acquire(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise DiskError(f"{self.directory}: not a folder")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            f = open(self.directory / LOCK_NAME, "a+")
        except OSError as exc:
            raise disk_error(self.directory, exc) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise Busy(f"{self.directory}: another campaign{who} is using this {self.what}; "
                       "wait for it to end, or give this one its own folder") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError:
            pass                             # a full disk: the lock holds all the same
        self.file = f

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _remove_leftovers(directory: Path) -> None:
    """Temporary files and folders of a writer that was killed (they start with '.')."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.name.startswith(".") and entry.name != LOCK_NAME:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    for folder in directory.iterdir():
        if folder.is_dir():
            for entry in folder.glob(".*"):
                if entry.is_file():
                    entry.unlink(missing_ok=True)


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class Corpus:
    """The programs a campaign starts from and keeps: the seeds (every .cow below the
    curated corpus folder, read only) and the queue (the campaign's own), added to by
    content hash."""

    def __init__(self, seeds, queue, warn=None):
        self.seeds = Path(seeds)
        self.queue = Path(queue)
        self.warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self.entries: list[str] = []     # canonical .cow texts, in the order they joined
        self.hashes: set[str] = set()    # of ``entries``
        self.seed_count = 0              # the first entries are the seeds
        self.unlinker = Unlinker()
        self.write_error: str | None = None   # set once the queue could not be written

    def load(self) -> int:
        """Read the seeds, then the queue; a bad file costs one warning line."""
        _remove_leftovers(self.queue)
        if self.seeds.is_dir():
            self._load(self.seeds)
        self.seed_count = len(self.entries)
        if self.queue.is_dir():
            self._load(self.queue, named_by_hash=True)
        return len(self.entries)

    def _load(self, folder: Path, named_by_hash: bool = False) -> None:
        """``named_by_hash``: a file whose text hashes to its name is the canonical text
        the campaign wrote (taken as it is: a restart reads a large queue in a moment);
        any other is parsed."""
        for path in sorted(folder.rglob("*.cow")):
            if path.name.startswith("."):
                continue
            if named_by_hash:
                try:
                    text = read_input(path)
                except (ParseError, OSError):
                    text = None
                if text is not None and content_hash(text) == path.stem:
                    if path.stem not in self.hashes:
                        self.hashes.add(path.stem)
                        self.entries.append(text)
                    continue
            try:
                program = read_program(path)
            except ParseError as exc:
                self.warn(f"warning: skipping corrupt corpus file {exc}")
                continue
            except OSError as exc:
                self.warn(f"warning: skipping unreadable corpus file {path}: {exc.strerror}")
                continue
            text = format_program(program)
            h = content_hash(text)
            if h not in self.hashes:
                self.hashes.add(h)
                self.entries.append(text)

    def add(self, text: str) -> bool:
        """Keep a program given as canonical .cow text (workers send it so); False if an
        identical one is already there. A queue that cannot be written costs one line,
        and the campaign goes on with the entry in memory."""
        h = content_hash(text)
        if h in self.hashes:
            return False
        self.hashes.add(h)
        self.entries.append(text)
        if self.write_error is None:
            try:
                atomic_write(self.queue / f"{h}.cow", text, durable=False)
            except OSError as exc:
                self.write_error = str(disk_error(self.queue, exc))
                self.warn(f"error: {self.write_error}; new corpus entries are kept in memory "
                          "only from now on")
        return True


    def remove(self, hashes: set[str]) -> None:
        """Drop queue entries (a distillation left them out): from memory at once, their
        files in the background (``Unlinker``: on a disk that discards freed blocks,
        thousands of unlinks take many seconds)."""
        if not hashes:
            return
        kept, gone = [], []
        for i, text in enumerate(self.entries):
            h = content_hash(text)
            if i < self.seed_count or h not in hashes:
                kept.append(text)
                continue
            self.hashes.discard(h)
            gone.append(self.queue / f"{h}.cow")
        self.entries = kept
        self.unlinker.unlink(gone)

    def close(self) -> None:
        """Wait for the files being removed (else the next run would load them again)."""
        self.unlinker.join()


class Unlinker:
    """Removes files in a thread of its own; ``join`` waits for the last of them."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._paths: list[Path] = []
        self._lock = threading.Lock()

    def unlink(self, paths: list[Path]) -> None:
        with self._lock:
            self._paths.extend(paths)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cowfuzz-unlink",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._paths:
                    return
                batch, self._paths = self._paths, []
            for path in batch:
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass                     # read-only: the next distillation drops it again

    def join(self) -> None:
        while self._thread is not None and self._thread.is_alive():
            self._thread.join()


class CrashStore:
    """crashes/<variant>/<signature slug>/ for each distinct signature."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.known: dict[str, Path] = {}
        self._lock = FolderLock(self.dir, "crash folder")

    def lock(self) -> None:
        """One campaign per crash folder; Busy if another holds it, DiskError if the folder
        cannot be written."""
        self._lock.acquire()
        check_writable(self.dir)

    def unlock(self) -> None:
        self._lock.release()

    def load(self) -> int:
        if self.dir.is_dir():
            _remove_leftovers(self.dir)
            for sig_file in sorted(self.dir.glob("*/signature.txt")):
                try:
                    self.known[read_input(sig_file, 1 << 16).strip()] = sig_file.parent
                except (OSError, ParseError):
                    continue
        return len(self.known)

    def folder(self, sig: str) -> Path:
        return self.dir / signature_slug(sig)

    def save_new(self, sig: str, files: dict[str, str]) -> Path:
        """Write a complete crash folder under a temporary name, then rename it; DiskError
        (and nothing left behind) if it cannot be written."""
        final = self.folder(sig)
        tmp = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.dir))
            os.chmod(tmp, DIR_MODE)                  # mkdtemp makes it 0700
            for name, text in {"signature.txt": sig + "\n", **files}.items():
                with open(tmp / name, "w", encoding="utf-8") as f:
                    os.fchmod(f.fileno(), FILE_MODE)
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
            if final.exists():               # found again after a crash between runs
                for name in os.listdir(tmp):
                    os.replace(tmp / name, final / name)
                tmp.rmdir()
            else:
                os.rename(tmp, final)
        except OSError as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise disk_error(self.dir, exc) from None
        self.known[sig] = final
        return final

    def write_index(self, text: str) -> None:
        """index.html, the crash folder's index; DiskError if it cannot be written."""
        try:
            atomic_write(self.dir / "index.html", text, durable=False)
        except OSError as exc:
            raise disk_error(self.dir, exc) from None

    def update(self, sig: str, files: dict[str, str]) -> None:
        """Rewrite files of a crash folder, each atomically; DiskError if one cannot be."""
        folder = self.known.get(sig) or self.folder(sig)
        for name, text in files.items():
            try:
                atomic_write(folder / name, text)
            except OSError as exc:
                raise disk_error(folder, exc) from None


class CampaignFolder:
    """campaigns/<variant>/: what one campaign keeps for itself (see the module
    docstring). ``open`` locks it and clears what a killed campaign left in ``work/``;
    ``close`` removes ``work/`` and unlocks."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.queue = self.dir / "queue"
        self.work = self.dir / "work"
        self.found = self.dir / "found"
        self._lock = FolderLock(self.dir, "campaign folder")
        self._trash: threading.Thread | None = None

    def open(self) -> None:
        self._lock.acquire()
        self._clear_work()
        for folder in (self.dir, self.queue, self.found):
            check_writable(folder)
        try:
            self.work.mkdir()
        except OSError as exc:
            raise disk_error(self.work, exc) from None

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        if self._trash is not None:
            self._trash.join()
        self._lock.release()

    def _clear_work(self) -> None:
        """A killed campaign's ``work/`` (libFuzzer's corpora: thousands of files) is moved
        aside and removed while this campaign starts, not before."""
        self._trash = None
        old = sorted(self.dir.glob(".trash-work-*")) if self.dir.is_dir() else []
        if self.work.exists():
            aside = self.dir / f".trash-work-{os.getpid()}-{len(old)}"
            try:
                os.rename(self.work, aside)
                old.append(aside)
            except OSError:
                shutil.rmtree(self.work, ignore_errors=True)
        if old:
            self._trash = threading.Thread(
                target=lambda: [shutil.rmtree(p, ignore_errors=True) for p in old],
                name="cowfuzz-trash", daemon=True)
            self._trash.start()

    def journal(self, slot: int) -> Path:
        """The append-only file where worker ``slot`` writes each finding before sending it."""
        return self.found / f"worker-{slot}.jsonl"

    def journals(self) -> list[Path]:
        return sorted(self.found.glob("worker-*.jsonl")) if self.found.is_dir() else []


def read_journal(path: Path) -> list[dict]:
    """The complete records of a worker's journal (a line cut short by a kill is not one)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and all(isinstance(record.get(k), str)
                                            for k in ("signature", "oracle", "program")):
            records.append(record)
    return records
