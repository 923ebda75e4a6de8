"""The operation table: everything a program's thread can do, defined once.

One ``Operation`` per operation: the word a .cow file uses, its arguments
(each with its domain and, where the kernel entry point takes something
else, the conversion), the ``Kernel`` method it calls (model/syscalls.py),
its opcode in the byte form, its shrink rank, its weight in generated
programs, whether its result is a value token, the argument tuples the
exhaustive strategy enumerates, and one line for the docs. The executor,
both codecs, the generator and mutator, the Hypothesis strategies, the
exhaustive vocabulary, the minimizer and the README's operation reference
all read this table; adding an operation is one entry here plus its
``op_*`` method on the kernel.

Three orders, each with one job:

- ``opcode`` is the byte form's opcode (fuzz/program/bytecodec.py): the
  opcodes are 0..n-1, and renumbering one reinterprets every byte corpus;
- ``rank`` is the shrink order: Hypothesis draws, and shrinks towards, the
  lowest rank, and the exhaustive vocabulary follows it;
- the table's own order is the generator's draw order, so moving an entry
  changes what a seed generates.

    python -m fuzz.program.ops --markdown     # the README's operation reference
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from fuzz.program.program import KINDS, MAX_PROCS, PROTS, Op
from model.pgtable import USER_PAGES

MAX_SLOTS = 4
MAX_EVENTS = 4


@dataclass(frozen=True)
class Flag:
    """A word the kernel entry point takes as a bool: whether the value is ``word``."""

    word: str

    def __call__(self, value) -> bool:
        return value == self.word


@dataclass(frozen=True)
class Arg:
    """One argument: its name, its domain (a range of ints or a tuple of words), what
    it means, and the conversion to what the kernel entry point takes (None: as is)."""

    name: str
    domain: range | tuple[str, ...]
    doc: str
    convert: Flag | None = None

    def describe_domain(self) -> str:
        if isinstance(self.domain, range):
            return f"{self.domain.start}..{self.domain.stop - 1}"
        return "|".join(self.domain)


VA = Arg("va", range(USER_PAGES), "a page of the address space (virtual page number)")
NPAGES = Arg("npages", range(1, USER_PAGES + 1), "pages from `va` on")
NEW_VA = Arg("newva", range(USER_PAGES), "the page the range moves to")
KIND = Arg("kind", KINDS, "anon: MAP_PRIVATE|MAP_ANONYMOUS; file: MAP_PRIVATE of the file; "
                          "shared: MAP_SHARED of the file")
PROT = Arg("prot", PROTS, "rw: PROT_READ|PROT_WRITE; r: PROT_READ")
CHILD = Arg("child", range(1, MAX_PROCS), "the id the new process gets")
PID = Arg("pid", range(MAX_PROCS), "a process id")
SLOT = Arg("slot", range(MAX_SLOTS), "a pin slot of the calling process (one pin each)")
ACCESS = Arg("access", ("ro", "rw"), "rw: FOLL_WRITE (the device may write the page)",
             Flag("rw"))
PATH = Arg("path", ("slow", "fast"), "fast: pin_user_pages_fast (lockless GUP-fast first); "
                                     "slow: pin_user_pages under mmap_read_lock", Flag("fast"))
LIFE = Arg("life", ("longterm", "short"), "longterm: FOLL_LONGTERM", Flag("longterm"))
EVENT = Arg("event", range(MAX_EVENTS), "a user-space event")


def _caller(entry: str, arity: int):
    """``(kernel, thread, args) -> kernel.<entry>(thread, *args)``, spelled as a positional
    call for the arities in use: it runs for every operation executed, and a ``*args``
    call of a coroutine function costs about twice a positional one."""
    if arity == 0:
        return lambda kernel, thread, a: getattr(kernel, entry)(thread)
    if arity == 1:
        return lambda kernel, thread, a: getattr(kernel, entry)(thread, a[0])
    if arity == 2:
        return lambda kernel, thread, a: getattr(kernel, entry)(thread, a[0], a[1])
    if arity == 3:
        return lambda kernel, thread, a: getattr(kernel, entry)(thread, a[0], a[1], a[2])
    if arity == 4:
        return lambda kernel, thread, a: getattr(kernel, entry)(thread, a[0], a[1], a[2], a[3])
    if arity == 5:
        return lambda kernel, thread, a: getattr(kernel, entry)(thread, a[0], a[1], a[2], a[3],
                                                                a[4])
    return lambda kernel, thread, a: getattr(kernel, entry)(thread, *a)


@dataclass(frozen=True)
class Operation:
    """One operation: ``entry(thread, *converted args)`` on the kernel runs it."""

    name: str
    args: tuple[Arg, ...]
    entry: str                     # the Kernel method the executor awaits
    doc: str                       # one line for the README's operation reference
    opcode: int                    # its byte in the byte form
    rank: int                      # shrink order: lower is simpler
    weight: int                    # relative frequency in generated programs (0: never)
    value: bool = False            # a non-negative result is a value token
    vocabulary: tuple[tuple, ...] = ()   # argument tuples the exhaustive strategy uses
    #: the operation that makes what this one uses (syzkaller's resources): without it
    #: in the program this one does nothing (an unpin with no pin, a read of an empty pipe)
    needs: str = ""
    #: ``call(kernel, thread, args)``: the entry point's coroutine for a program's values
    call: Callable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        invoke = _caller(self.entry, len(self.args))
        if any(a.convert for a in self.args):
            converted: dict[tuple, tuple] = {}    # a program's values -> the kernel's

            def call(kernel, thread, args):
                kernel_args = converted.get(args)
                if kernel_args is None:
                    kernel_args = converted[args] = tuple(
                        a.convert(v) if a.convert else v for a, v in zip(self.args, args))
                return invoke(kernel, thread, kernel_args)
        else:
            call = invoke
        object.__setattr__(self, "call", call)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    def usage(self) -> str:
        return " ".join((self.name, *self.arg_names))


def _product(*domains) -> tuple[tuple, ...]:
    return tuple(itertools.product(*domains))


def _table(*operations: Operation) -> dict[str, Operation]:
    table = {o.name: o for o in operations}
    assert len(table) == len(operations), "two operations share a name"
    return table


#: every operation, in the generator's draw order
OPERATIONS: dict[str, Operation] = _table(
    Operation("read", (VA,), "op_read", "a user load from `va` (faults the page in)",
              opcode=0, rank=0, weight=10, value=True, vocabulary=((0,), (4,))),
    Operation("write", (VA,), "op_write", "a user store to `va` (a write fault breaks COW)",
              opcode=1, rank=1, weight=14, value=True, vocabulary=((0,), (4,))),
    Operation("fork", (CHILD,), "op_fork", "fork(): process `child` gets a copy of the "
              "caller's mm; its threads start when the fork completes",
              opcode=8, rank=2, weight=6, vocabulary=((1,),)),
    Operation("pin", (SLOT, VA, ACCESS, PATH, LIFE), "op_pin", "a driver pins the page at `va` "
              "with FOLL_PIN (as cow.c's gup_test) and keeps it in `slot`",
              opcode=10, rank=3, weight=8,
              vocabulary=_product((0,), (0, 4), ("ro", "rw"), ("fast", "slow"),
                                  ("longterm", "short"))),
    Operation("unpin", (SLOT,), "op_unpin", "unpin_user_page() on the pin in `slot`",
              opcode=11, rank=4, weight=3, vocabulary=((0,),), needs="pin"),
    Operation("devread", (SLOT,), "op_devread", "the device reads the page pinned in `slot` "
              "(DMA from memory)", opcode=12, rank=5, weight=5, value=True, vocabulary=((0,),),
              needs="pin"),
    Operation("devwrite", (SLOT,), "op_devwrite", "the device writes the page pinned in `slot` "
              "(DMA to memory; needs an rw pin) and, as a driver does, dirties it "
              "(bio_set_pages_dirty)",
              opcode=13, rank=6, weight=4, value=True, vocabulary=((0,),), needs="pin"),
    Operation("vmsplice", (VA,), "op_vmsplice", "vmsplice() the page at `va` into the caller's "
              "pipe (a GUP reference, no pin)", opcode=14, rank=13, weight=3, vocabulary=((0,),)),
    Operation("piperead", (), "op_piperead", "read() the oldest page from the caller's pipe",
              opcode=15, rank=14, weight=3, value=True, vocabulary=((),),
              needs="vmsplice"),
    Operation("mprotect", (VA, NPAGES, PROT), "op_mprotect", "mprotect() the range to `prot`",
              opcode=4, rank=7, weight=4, vocabulary=((0, 1, "r"), (0, 1, "rw"))),
    Operation("dontneed", (VA, NPAGES), "op_dontneed", "madvise(MADV_DONTNEED): zap the range",
              opcode=5, rank=8, weight=3, vocabulary=((0, 1),)),
    Operation("munmap", (VA, NPAGES), "op_munmap", "munmap() the range",
              opcode=3, rank=11, weight=2, vocabulary=((0, 1),)),
    Operation("mmap", (VA, NPAGES, KIND, PROT), "op_mmap", "mmap() a new mapping at `va` "
              "(MAP_FIXED_NOREPLACE; a file mapping starts at the file's first page)",
              opcode=2, rank=12, weight=2),
    Operation("mremap", (VA, NPAGES, NEW_VA), "op_mremap", "mremap(MREMAP_MAYMOVE|"
              "MREMAP_FIXED): move the range to `newva` (unmapping what was there), page "
              "tables and all", opcode=21, rank=21, weight=2,
              vocabulary=((0, 1, 4), (0, 4, 4))),
    Operation("dontfork", (VA, NPAGES), "op_dontfork", "madvise(MADV_DONTFORK): the range "
              "is left out of children forked later", opcode=22, rank=22, weight=1,
              vocabulary=((0, 1),)),
    Operation("dofork", (VA, NPAGES), "op_dofork", "madvise(MADV_DOFORK): undo "
              "MADV_DONTFORK", opcode=23, rank=23, weight=1, vocabulary=((0, 1),)),
    Operation("wipeonfork", (VA, NPAGES), "op_wipeonfork", "madvise(MADV_WIPEONFORK): "
              "children forked later get the (anonymous) range empty",
              opcode=24, rank=24, weight=1, vocabulary=((0, 1),)),
    Operation("pageout", (VA, NPAGES), "op_pageout", "madvise(MADV_PAGEOUT): reclaim the "
              "range's exclusively mapped anon pages to swap",
              opcode=6, rank=9, weight=3, vocabulary=((0, 1),)),
    Operation("reclaim", (VA,), "op_reclaim", "kswapd reclaims the anon page mapped at `va`: "
              "off the LRU, then shrink_folio_list (unmap everywhere, to swap)",
              opcode=7, rank=10, weight=3, vocabulary=((0,),)),
    Operation("clear_refs", (), "op_clear_refs", "write 4 to /proc/self/clear_refs: clear "
              "soft-dirty, write-protecting the PTEs", opcode=16, rank=15, weight=2,
              vocabulary=((),)),
    Operation("procmem", (PID, VA), "op_procmem", "write to /proc/`pid`/mem at `va` "
              "(FOLL_FORCE: a write fault from the kernel side)",
              opcode=17, rank=16, weight=3, value=True, vocabulary=((0, 0), (1, 0))),
    Operation("exit", (), "op_exit", "exit_group(): the process's other threads stop at "
              "their next operation", opcode=9, rank=17, weight=1, vocabulary=((),)),
    Operation("signal", (EVENT,), "op_signal", "set user-space `event` (wakes its waiters)",
              opcode=18, rank=18, weight=0),
    Operation("wait", (EVENT,), "op_wait", "wait until `event` is set",
              opcode=19, rank=19, weight=0),
    Operation("waitpid", (PID,), "op_waitpid", "wait until process `pid` has exited",
              opcode=20, rank=20, weight=0),
)


# -- views of the table (computed when asked: an entry added later shows everywhere) -------

def by_opcode() -> tuple[Operation, ...]:
    """The operations indexed by their opcode byte."""
    return tuple(sorted(OPERATIONS.values(), key=lambda o: o.opcode))


def shrink_order() -> tuple[str, ...]:
    """Operation names, simplest first."""
    return tuple(o.name for o in sorted(OPERATIONS.values(), key=lambda o: o.rank))


def vocabulary() -> tuple[Op, ...]:
    """The exhaustive strategy's operations: each entry's vocabulary, in shrink order."""
    ops = sorted(OPERATIONS.values(), key=lambda o: o.rank)
    return tuple(Op(o.name, args) for o in ops for args in o.vocabulary)


def forked_child(op: Op) -> int | None:
    """The process ``op`` creates (the value of its ``child`` argument), if any."""
    spec = OPERATIONS.get(op.name)
    if spec is None:
        return None
    for arg, value in zip(spec.args, op.args):
        if arg.name == "child":
            return value
    return None


def validate_op(op: Op) -> str | None:
    """Why ``op`` is not well-formed, or None."""
    spec = OPERATIONS.get(op.name)
    if spec is None:
        return f"unknown operation {op.name!r}"
    names = spec.arg_names
    if len(op.args) != len(names):
        return (f"{op.name} takes {len(names)} arguments ({' '.join(names) or 'none'}), "
                f"got {len(op.args)}")
    for arg, value in zip(spec.args, op.args):
        if value not in arg.domain:
            if isinstance(arg.domain, range):
                return f"{op.name}: {arg.name} must be in {arg.describe_domain()}, got {value!r}"
            return f"{op.name}: {arg.name} must be one of {', '.join(arg.domain)}, got {value!r}"
    return None


def table_errors(kernel_cls=None) -> list[str]:
    """What is inconsistent in the table (empty when it is well-formed)."""
    errors = []
    ops = list(OPERATIONS.values())
    if sorted(o.opcode for o in ops) != list(range(len(ops))):
        errors.append("opcodes are not 0..n-1, each once")
    if len({o.rank for o in ops}) != len(ops):
        errors.append("two operations share a shrink rank")
    if not any(o.weight for o in ops):
        errors.append("no operation has a generation weight")
    for o in ops:
        if kernel_cls is not None and not callable(getattr(kernel_cls, o.entry, None)):
            errors.append(f"{o.name}: {kernel_cls.__name__} has no method {o.entry}")
        if o.needs and o.needs not in OPERATIONS:
            errors.append(f"{o.name}: needs unknown operation {o.needs!r}")
        for args in o.vocabulary:
            why = validate_op(Op(o.name, args))
            if why:
                errors.append(f"{o.name}: vocabulary {args}: {why}")
    return errors


# -- the README's operation reference ---------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|")          # a bare | would end the table cell


def markdown() -> str:
    """The operation reference: every operation, then every argument."""
    out = ["| operation | what it does | kernel entry |", "|---|---|---|"]
    for o in OPERATIONS.values():
        result = " Returns a value." if o.value else ""
        out.append(f"| `{o.usage()}` | {_cell(o.doc)}.{result} | `{o.entry}` |")
    out += ["", "| argument | values | meaning |", "|---|---|---|"]
    args: dict[str, Arg] = {}
    for o in OPERATIONS.values():
        for a in o.args:
            args.setdefault(a.name, a)
    for a in args.values():
        out.append(f"| `{a.name}` | {_cell(a.describe_domain())} | {_cell(a.doc)} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true",
                    help="print the README's operation reference")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(), end="")
    else:
        for o in OPERATIONS.values():
            print(f"{o.usage():<36} {o.doc}")


if __name__ == "__main__":
    main()
