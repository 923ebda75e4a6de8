"""Program: the pure data a run is made of.

A Program is the initial memory layout of process 0, the operations of each
thread (threads belong to processes; process k > 0 is created by the fork
operation ``fork k`` and its threads start when that fork completes), and
the schedule: one relative choice per scheduling decision (0 = keep running
the current task, k = the k-th runnable task after it in rotation; an
exhausted schedule means 0 forever). Frozen dataclasses, no model objects.

The operations themselves (names, arguments, their domains) are the table in
fuzz/program/ops.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from model.pgtable import USER_PAGES
from model.swap import DISK, SWAP_DEVICES

KINDS = ("anon", "file", "shared")     # MAP_PRIVATE|MAP_ANONYMOUS, MAP_PRIVATE file, MAP_SHARED file
PROTS = ("rw", "r")
POPULATE = ("none", "read", "write", "swap")
SWAPS = SWAP_DEVICES
MAX_PROCS = 4
FILE_PAGES = 4

#: Bounds on what an input may ask for (a .cow file or a token is often someone else's):
#: far above any program a search makes, far below what exhausts a machine. Each has its
#: own one-line error naming it.
MAX_INPUT_BYTES = 1 << 20      # a .cow file, or the decompressed text of a token
MAX_THREADS = 64
MAX_OPS = 4096                 # operations of all threads together
MAX_MAPPINGS = 64
#: an execution stops after 20,000 steps (the scheduler's step budget), so a longer
#: schedule could never be followed
MAX_SCHEDULE = 20_000
MAX_CHOICE = 4095              # a choice counts runnable tasks (taken modulo their number)


@dataclass(frozen=True)
class Op:
    """One operation of a thread: its name and arguments (ints or words)."""

    name: str
    args: tuple = ()

    @functools.cached_property
    def text(self) -> str:
        """The operation as a program line prints it ("pin 0 0 rw fast longterm"); kept,
        since every execution of the program prints it into the trace."""
        return " ".join([self.name, *map(str, self.args)])

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Mapping:
    """An initial mapping of process 0, optionally populated before threads start."""

    va: int
    npages: int
    kind: str = "anon"
    prot: str = "rw"
    pgoff: int = 0
    populate: str = "none"


def fit_mapping(va: int, npages: int, kind: str, prot: str, pgoff: int, populate: str) -> Mapping:
    """Clamp raw values into a well-formed Mapping: inside the address space, and a
    file mapping inside the file (generators and decoders build mappings with it)."""
    va %= USER_PAGES
    npages = max(1, min(npages, USER_PAGES - va))
    if kind == "anon":
        pgoff = 0
    else:
        npages = min(npages, FILE_PAGES)
        pgoff = max(0, min(pgoff, FILE_PAGES - npages))
    return Mapping(va, npages, kind, prot, pgoff, populate)


@dataclass(frozen=True)
class ThreadSpec:
    """A thread of process ``pid`` and the operations it runs, in order."""

    pid: int
    ops: tuple[Op, ...] = ()


@dataclass(frozen=True)
class Program:
    mappings: tuple[Mapping, ...] = ()
    threads: tuple[ThreadSpec, ...] = ()
    schedule: tuple[int, ...] = ()
    fault_injection: bool = False
    file_pages: int = FILE_PAGES
    #: verdict expected per variant name ("clean" or an oracle name), kept for regressions
    expect: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    #: the variant the program was found on, if any
    found_on: str | None = field(default=None, compare=False)
    #: the swap device (model/swap.py): "disk", or "zram" (SWP_SYNCHRONOUS_IO)
    swap: str = DISK

    def with_schedule(self, schedule) -> "Program":
        return Program(self.mappings, self.threads, tuple(schedule), self.fault_injection,
                       self.file_pages, self.expect, self.found_on, self.swap)

    def op_count(self) -> int:
        return sum(len(t.ops) for t in self.threads)

    def preemptions(self) -> int:
        return sum(1 for c in self.schedule if c)

