"""The campaign's files: corpus entries and crash folders, written atomically.

Only the campaign coordinator writes here, and one campaign at a time per
crash folder (a lock file). Every file is written to a
temporary name and renamed into place (a crash folder is built under a
temporary name and renamed whole), so a campaign killed at any moment,
SIGKILL included, leaves either the complete file or nothing.

* corpus/<variant>/queue/<sha1 of the canonical text>.cow -- one program
  each (the hand-written seeds and kept reproducers sit above queue/);
* crashes/<variant>/<oracle>-<hash>/ -- signature.txt, input.cow (as found),
  trace.txt (of the input, then of the reproducer), token.txt, and
  repro.cow once minimization is done.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from fuzz.triage.signature import signature_slug
from fuzz.program.textcodec import ParseError, format_program, read_program


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
    """Another campaign holds the crash folder."""


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
    """A directory of .cow programs: read all of them, add new ones by content hash."""

    def __init__(self, directory, warn=None):
        self.dir = Path(directory)
        self.warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self.entries: list[str] = []     # canonical .cow texts, in the order they joined
        self.hashes: set[str] = set()

    def load(self) -> int:
        """Read every *.cow below the directory; a bad file costs one warning line."""
        if not self.dir.is_dir():
            return 0
        _remove_leftovers(self.dir / "queue")
        for path in sorted(self.dir.rglob("*.cow")):
            if path.name.startswith("."):
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
        return len(self.entries)

    def add(self, text: str) -> bool:
        """Store a program given as canonical .cow text (workers send it so); False if an
        identical one is already there."""
        h = content_hash(text)
        if h in self.hashes:
            return False
        atomic_write(self.dir / "queue" / f"{h}.cow", text, durable=False)
        self.hashes.add(h)
        self.entries.append(text)
        return True


class CrashStore:
    """crashes/<variant>/<signature slug>/ for each distinct signature."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.known: dict[str, Path] = {}

    def lock(self) -> None:
        """One campaign per crash folder (an flock, released when the process dies)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir / LOCK_NAME, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise Busy(f"{self.dir}: another campaign is using this crash folder") from None

    def load(self) -> int:
        if self.dir.is_dir():
            _remove_leftovers(self.dir)
            for sig_file in sorted(self.dir.glob("*/signature.txt")):
                try:
                    self.known[sig_file.read_text().strip()] = sig_file.parent
                except OSError:
                    continue
        return len(self.known)

    def folder(self, sig: str) -> Path:
        return self.dir / signature_slug(sig)

    def save_new(self, sig: str, files: dict[str, str]) -> Path:
        """Write a complete crash folder under a temporary name, then rename it."""
        final = self.folder(sig)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.dir))
        os.chmod(tmp, DIR_MODE)
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
        self.known[sig] = final
        return final

    def update(self, sig: str, files: dict[str, str]) -> None:
        folder = self.known.get(sig) or self.folder(sig)
        for name, text in files.items():
            atomic_write(folder / name, text)
