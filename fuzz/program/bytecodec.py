"""A total byte encoding of Programs: every byte string decodes to a valid program.

libFuzzer mutates raw bytes and Hypothesis draws byte streams; with a
total decoder no input is wasted. Layout (a missing byte reads as 0):

    flags                   bit 0: fault injection; bits 1..2: mappings - 1; bit 3: zram swap
    3 bytes per mapping     va | npages-1 + (kind << 2) | prot + (populate << 1) + (pgoff << 3)
    threads - 1             (1..4 threads)
    per thread: pid, n ops  (n <= 16)
    per op: opcode, then one byte per argument (reduced into its domain)
    the rest                the schedule, one choice per byte

Opcodes and argument domains are the operation table's (fuzz/program/ops.py).

``encode`` writes exactly what ``decode`` reads, so
``decode(encode(p)) == p`` for every program within the bounds and
``encode(decode(b))`` is the canonical form of ``b``.
"""

from __future__ import annotations

from fuzz.program.ops import OPERATIONS, Arg, by_opcode
from fuzz.program.program import (FILE_PAGES, KINDS, MAX_PROCS, POPULATE, PROTS, SWAPS, Mapping,
                                  Op, Program, ThreadSpec, fit_mapping)
from model.pgtable import USER_PAGES

MAX_MAPPINGS = 4
MAX_THREADS = 4
MAX_OPS = 16
MAX_SCHEDULE = 512


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos < len(self.data):
            b = self.data[self.pos]
            self.pos += 1
            return b
        self.pos += 1
        return 0

    def rest(self) -> bytes:
        return self.data[self.pos:] if self.pos < len(self.data) else b""


def _decode_arg(arg: Arg, b: int):
    return arg.domain[b % len(arg.domain)]


def _encode_arg(arg: Arg, value) -> int:
    return arg.domain.index(value)


def decode(data: bytes) -> Program:
    """Any byte string -> a valid Program. Never raises."""
    r = _Reader(bytes(data))
    opcodes = by_opcode()
    flags = r.byte()
    faults = bool(flags & 1)
    swap = SWAPS[(flags >> 3) & 1]
    mappings = []
    for _ in range(((flags >> 1) & 3) + 1):
        va, b1, b2 = r.byte(), r.byte(), r.byte()
        mappings.append(fit_mapping(va, (b1 & 3) + 1, KINDS[(b1 >> 2) % len(KINDS)],
                                    PROTS[b2 & 1], (b2 >> 3) & 3, POPULATE[(b2 >> 1) & 3]))
    threads = []
    for _ in range(r.byte() % MAX_THREADS + 1):
        pid = r.byte() % MAX_PROCS
        ops = []
        for _ in range(r.byte() % (MAX_OPS + 1)):
            operation = opcodes[r.byte() % len(opcodes)]
            ops.append(Op(operation.name, tuple(_decode_arg(a, r.byte()) for a in operation.args)))
        threads.append(ThreadSpec(pid, tuple(ops)))
    schedule = tuple(r.rest()[:MAX_SCHEDULE])
    end = len(schedule)
    while end and schedule[end - 1] == 0:
        end -= 1
    return Program(tuple(mappings), tuple(threads), schedule[:end], faults, swap=swap)


def encodable(p: Program) -> bool:
    """Whether ``p`` is within the bounds of the byte layout."""
    return (1 <= len(p.mappings) <= MAX_MAPPINGS and 1 <= len(p.threads) <= MAX_THREADS
            and all(len(t.ops) <= MAX_OPS for t in p.threads) and p.file_pages == FILE_PAGES
            and all(0 <= c < 256 for c in p.schedule) and len(p.schedule) <= MAX_SCHEDULE
            and all(m.npages <= 4 and m.pgoff <= 3 for m in p.mappings))


def encode(p: Program) -> bytes:
    """Program -> bytes that decode back to it (clamped to the layout's bounds)."""
    maps = p.mappings[:MAX_MAPPINGS] or (Mapping(0, 1),)
    out = bytearray([int(p.fault_injection) | ((len(maps) - 1) << 1)
                     | (SWAPS.index(p.swap) << 3)])
    for m in maps:
        out.append(m.va % USER_PAGES)
        out.append(((min(m.npages, 4) - 1) & 3) | (KINDS.index(m.kind) << 2))
        out.append(PROTS.index(m.prot) | (POPULATE.index(m.populate) << 1)
                   | ((m.pgoff & 3) << 3))
    threads = p.threads[:MAX_THREADS] or (ThreadSpec(0, ()),)
    out.append(len(threads) - 1)
    for t in threads:
        ops = t.ops[:MAX_OPS]
        out.append(t.pid)
        out.append(len(ops))
        for op in ops:
            operation = OPERATIONS[op.name]
            out.append(operation.opcode)
            out.extend(_encode_arg(a, v) for a, v in zip(operation.args, op.args))
    out.extend(min(c, 255) for c in p.schedule[:MAX_SCHEDULE])
    return bytes(out)
