"""The .cow text form of a Program: canonical, diffable, hand-editable.

    cowfuzz 1                       # format version; '#' starts a comment
    found-on cowpte-rfc2            # the variant it was found on (optional)
    expect upstream clean           # verdict kept per variant: clean or an oracle
    expect reuse-mapcount isolation
    faults on                       # allocation-failure injection (default off)
    file-pages 4                    # pages of the memfd (default 4)
    swap zram                       # the swap device: disk (default) or zram
    map 0 1 anon rw populate=write  # va npages kind prot [pgoff=N] [populate=P]
    thread 0                        # a thread of process 0; its operations follow
      fork 1
      write 0
    thread 1                        # process 1 exists once "fork 1" completes
      read 0
    schedule 0 0 1 0 2              # one relative choice per scheduling decision

``format_program`` is canonical (comments dropped, fixed order, defaults
omitted) and ``parse_program(format_program(p)) == p``. A malformed line
raises ParseError with ``file:line: what is wrong``.

A .cow file is often someone else's: ``read_program`` reads regular files
only (never a FIFO or a device), and every size is bounded (fuzz/program/
program.py, ``MAX_*``), each bound with its own error. Error messages cut
what they quote short.
"""

from __future__ import annotations

import os
import stat

from fuzz.program.ops import OPERATIONS, validate_op
from fuzz.program.program import (FILE_PAGES, KINDS, MAX_CHOICE, MAX_INPUT_BYTES, MAX_MAPPINGS,
                                  MAX_OPS, MAX_PROCS, MAX_SCHEDULE, MAX_THREADS, POPULATE, PROTS,
                                  SWAPS, Mapping, Op, Program, ThreadSpec)
from model.swap import DISK
from model.oracles.errors import oracle_names
from model.pgtable import USER_PAGES
from model.variants import is_design_name

FORMAT_VERSION = 1
HEADER = f"cowfuzz {FORMAT_VERSION}"


class ParseError(ValueError):
    """A malformed .cow file; str() is ``file:line: what is wrong`` (``file: what is
    wrong`` when no line is to blame), one line of bounded length."""

    def __init__(self, where: str, line: int | None, what: str):
        where, what = _short(str(where), 200), _short(" ".join(what.split()), 400)
        super().__init__(f"{where}:{line}: {what}" if line is not None else f"{where}: {what}")
        self.where = where
        self.line = line
        self.what = what


#: verdicts an ``expect`` line may record besides an oracle's name
PLAIN_VERDICTS = ("clean", "model-error")


def _design(word: str) -> str:
    """A design name (never a path or module: a .cow file cannot load code)."""
    if not is_design_name(word):
        raise ValueError(f"{_short(word)!r} is not a variant name (a .cow file names a design "
                         "by its registered name; --designs declares your own)")
    return word


def _verdict(word: str) -> str:
    if word not in PLAIN_VERDICTS and word not in oracle_names():
        raise ValueError(f"unknown verdict {_short(word)!r} (clean, model-error or an oracle: "
                         f"{', '.join(sorted(oracle_names()))})")
    return word


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _int(word: str, what: str) -> int:
    if len(word) > 12:                   # also spares int() a million digits
        raise ValueError(f"{what} must be a small integer, got {_short(word, 20)!r}")
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {_short(word)!r}") from None


def _arg(value):
    return str(value)


def format_program(p: Program) -> str:
    out = [HEADER]
    if p.found_on:
        out.append(f"found-on {p.found_on}")
    for variant, verdict in sorted(p.expect):
        out.append(f"expect {variant} {verdict}")
    if p.fault_injection:
        out.append("faults on")
    if p.file_pages != FILE_PAGES:
        out.append(f"file-pages {p.file_pages}")
    if p.swap != DISK:
        out.append(f"swap {p.swap}")
    for m in p.mappings:
        line = f"map {m.va} {m.npages} {m.kind} {m.prot}"
        if m.pgoff:
            line += f" pgoff={m.pgoff}"
        if m.populate != "none":
            line += f" populate={m.populate}"
        out.append(line)
    for t in p.threads:
        out.append(f"thread {t.pid}")
        for op in t.ops:
            out.append("  " + " ".join([op.name, *map(_arg, op.args)]))
    if p.schedule:
        out.append("schedule " + " ".join(map(str, p.schedule)))
    return "\n".join(out) + "\n"


def _parse_mapping(words) -> Mapping:
    if len(words) < 4:
        raise ValueError("map needs: va npages kind prot [pgoff=N] [populate=none|read|write|swap]")
    va = _int(words[0], "map va")
    npages = _int(words[1], "map npages")
    kind, prot = words[2], words[3]
    if kind not in KINDS:
        raise ValueError(f"map kind must be one of {', '.join(KINDS)}, got {_short(kind)!r}")
    if prot not in PROTS:
        raise ValueError(f"map prot must be one of {', '.join(PROTS)}, got {_short(prot)!r}")
    if not (0 <= va < USER_PAGES and 1 <= npages and va + npages <= USER_PAGES):
        raise ValueError(f"map {va} {npages} does not fit the {USER_PAGES}-page address space")
    pgoff, populate = 0, "none"
    for opt in words[4:]:
        key, eq, value = opt.partition("=")
        if not eq:
            raise ValueError(f"unknown map option {_short(opt)!r} (pgoff=N or populate=P)")
        if key == "pgoff":
            pgoff = _int(value, "pgoff")
            if kind == "anon":
                raise ValueError("pgoff is an offset in the file: an anon mapping takes none")
            if pgoff < 0:
                raise ValueError(f"pgoff must be 0 or more, got {pgoff}")
        elif key == "populate":
            if value not in POPULATE:
                raise ValueError(f"populate must be one of {', '.join(POPULATE)}, "
                                 f"got {_short(value)!r}")
            populate = value
        else:
            raise ValueError(f"unknown map option {_short(key)!r} (pgoff=N or populate=P)")
    return Mapping(va, npages, kind, prot, pgoff, populate)


def _parse_op(words) -> Op:
    name = words[0]
    operation = OPERATIONS.get(name)
    if operation is None:
        raise ValueError(f"unknown operation {_short(name)!r} (known: {', '.join(OPERATIONS)})")
    args = tuple(_int(word, f"{name} {arg.name}") if isinstance(arg.domain, range) else word
                 for arg, word in zip(operation.args, words[1:]))
    if len(words) - 1 != len(operation.args):
        args = tuple(words[1:])                  # validate_op names the arity
    op = Op(name, args)
    why = validate_op(op)
    if why:
        raise ValueError(why)
    return op


def _found_on(words) -> str:
    if len(words) != 2:
        raise ValueError("found-on takes one variant name")
    return _design(words[1])


def _faults(words) -> bool:
    if words[1:] not in (["on"], ["off"]):
        raise ValueError("faults takes 'on' or 'off'")
    return words[1] == "on"


def _swap(words) -> str:
    if len(words) != 2 or words[1] not in SWAPS:
        raise ValueError(f"swap takes one device: {' or '.join(SWAPS)}")
    return words[1]


def _file_pages(words) -> int:
    file_pages = _int(words[1], "file-pages") if len(words) == 2 else -1
    if not 1 <= file_pages <= 8:
        raise ValueError("file-pages takes one number in 1..8")
    return file_pages


def _schedule(words) -> tuple[int, ...]:
    if len(words) - 1 > MAX_SCHEDULE:
        raise ValueError(f"{len(words) - 1:,} schedule choices, over the limit of "
                         f"{MAX_SCHEDULE:,} (an execution stops after that many steps)")
    schedule = tuple(_int(w, "schedule choice") for w in words[1:])
    if any(not 0 <= c <= MAX_CHOICE for c in schedule):
        raise ValueError(f"schedule choices are in 0..{MAX_CHOICE}")
    return schedule


#: the lines a program has at most once, each with its parser (the line's words -> value)
SETTINGS = {"found-on": _found_on, "faults": _faults, "file-pages": _file_pages, "swap": _swap,
            "schedule": _schedule}


def parse_program(text: str, where: str = "<string>") -> Program:
    """Parse a .cow text; raises ParseError naming the file and line."""
    if len(text) > MAX_INPUT_BYTES:
        raise ParseError(where, None, f"{len(text):,} characters, over the limit of a program "
                                      f"({MAX_INPUT_BYTES:,})")
    lines = text.splitlines()
    mappings, threads, expect = [], [], []
    settings = {"found-on": None, "faults": False, "file-pages": FILE_PAGES, "swap": DISK,
                "schedule": ()}
    cur_pid, cur_ops = None, []
    ops_total = 0
    seen_header = False
    once: dict[str, int] = {}                # lines that may appear once -> where they did

    def flush():
        if cur_pid is not None:
            threads.append(ThreadSpec(cur_pid, tuple(cur_ops)))

    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        try:
            if not seen_header:
                if words[0] != "cowfuzz" or len(words) != 2:
                    raise ValueError(f"first line must be '{HEADER}'")
                if words[1] != str(FORMAT_VERSION):
                    raise ValueError(f"unsupported format version {words[1]} "
                                     f"(this cowfuzz reads {FORMAT_VERSION})")
                seen_header = True
                continue
            key = words[0]
            indented = raw[:1].isspace()
            if not indented and key in SETTINGS:
                if key in once:
                    raise ValueError(f"a second {key} line (the first is line {once[key]})")
                once[key] = lineno
                settings[key] = SETTINGS[key](words)
                continue
            if indented:
                if cur_pid is None:
                    raise ValueError("operation outside a thread (add 'thread <pid>' above it)")
                ops_total += 1
                if ops_total > MAX_OPS:
                    raise ValueError(f"more than {MAX_OPS} operations (the limit of a program)")
                cur_ops.append(_parse_op(words))
            elif key == "thread":
                if len(words) != 2:
                    raise ValueError("thread takes one argument: the process id")
                pid = _int(words[1], "thread pid")
                if not 0 <= pid < MAX_PROCS:
                    raise ValueError(f"process id must be in 0..{MAX_PROCS - 1}")
                if len(threads) + (cur_pid is not None) >= MAX_THREADS:
                    raise ValueError(f"more than {MAX_THREADS} threads (the limit of a program)")
                flush()
                cur_pid, cur_ops = pid, []
            elif key == "map":
                if threads or cur_pid is not None:
                    raise ValueError("map lines come before the threads")
                if len(mappings) >= MAX_MAPPINGS:
                    raise ValueError(f"more than {MAX_MAPPINGS} mappings (the limit of a program)")
                mappings.append(_parse_mapping(words[1:]))
            elif key == "expect":
                if len(words) != 3:
                    raise ValueError("expect takes: variant verdict (clean or an oracle name)")
                variant, verdict = _design(words[1]), _verdict(words[2])
                if any(v == variant for v, _ in expect):
                    raise ValueError(f"a second expect line for {variant}")
                expect.append((variant, verdict))
            else:
                raise ValueError(f"unknown line {_short(key)!r} (an operation must be indented "
                                 "under a 'thread' line)")
        except ValueError as exc:
            raise ParseError(where, lineno, str(exc)) from None
    if not seen_header:
        raise ParseError(where, 1, f"empty file: the first line must be '{HEADER}'")
    flush()
    file_pages = settings["file-pages"]
    for m in mappings:
        if m.kind != "anon" and m.pgoff + m.npages > file_pages:
            raise ParseError(where, 1, f"map {m.va}: pgoff {m.pgoff} + {m.npages} pages is "
                                       f"beyond the {file_pages}-page file")
    return Program(tuple(mappings), tuple(threads), settings["schedule"], settings["faults"],
                   file_pages, tuple(expect), settings["found-on"], settings["swap"])


def read_input(path, limit: int = MAX_INPUT_BYTES) -> str:
    """The text of a regular file of at most ``limit`` bytes. Anything else -- a FIFO (it
    would block), a device (/dev/zero never ends), a folder, a larger file -- is a
    ParseError naming the file; OSError if it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ParseError(str(path), None, "not a regular file (a .cow file is read only "
                                              "from a regular file)")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ParseError(str(path), None, f"over the size limit of a .cow file ({limit:,} bytes)")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(str(path), 1, "not a text file") from None


def read_program(path) -> Program:
    """Read and parse a .cow file; OSError and ParseError name the file."""
    return parse_program(read_input(path), str(path))
