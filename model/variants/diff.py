"""A design's difference from upstream, one unified diff per function it overrides.

A design subclasses ``model.kernel.Kernel`` and overrides kernel paths. For
each function the design's class resolves differently from Kernel (its own
overrides and those it inherits from a shared base or another design),
``render`` diffs the source of the function upstream resolves to (found
through Kernel's MRO) against the design's. An override that calls
upstream's through super() repeats none of its body, so upstream's side of
its diff is the head only (signature and docstring). A function upstream
does not have is listed by name in the header: it has nothing to differ
from. A historical variant's diff is its reverted fix.

The built-in designs' diffs are stored in docs/variants/<name>.diff, and
tests/test_variant_diffs.py fails when one no longer matches the code: a
change to an upstream function that a variant copied shows up there, for a
person to carry over to the copy (or not) before regenerating.

    python -m model.variants.diff NAME...    print the designs' diffs
    python -m model.variants.diff --write    rewrite docs/variants/*.diff
    python -m model.variants.diff --check    exit 1 if a stored diff is out of date
"""

from __future__ import annotations

import argparse
import ast
import difflib
import inspect
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType

from model.kernel import Kernel
from model.variants import BUILTIN, VARIANTS, VariantError, load_design

#: the folder holding the ``model`` package: source paths are shown relative to it
SOURCE_ROOT = Path(__file__).resolve().parents[2]
#: where the built-in designs' diffs are stored (a source checkout has it)
DIFF_DIR = SOURCE_ROOT / "docs" / "variants"
REGENERATE = "python -m model.variants.diff --write"

_UPSTREAM = frozenset(Kernel.__mro__)


@dataclass(frozen=True)
class Override:
    """A function a design resolves outside upstream's classes: an override of
    upstream's function of that name, or a function upstream does not have."""

    name: str
    owner: type                  # the class the design's function is defined in
    function: object
    upstream_owner: type | None  # None: upstream has no function of that name
    upstream: object | None


def _function(value):
    """The plain function behind a class attribute, or None if it is not a function."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    # the function itself, not a decorator's wrapper (contextmanager, functools.wraps)
    return inspect.unwrap(value) if isinstance(value, FunctionType) else None


def _upstream(name: str) -> tuple[type | None, object | None]:
    for klass in Kernel.__mro__:
        if name in vars(klass):
            function = _function(vars(klass)[name])
            return (klass, function) if function is not None else (None, None)
    return None, None


def functions(cls: type) -> list[Override]:
    """The functions ``cls`` resolves outside upstream's classes, most derived class
    first and in source order within a class."""
    seen: set[str] = set()
    out = []
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)                  # the MRO's first definition is what cls uses
            function = _function(value)
            if klass in _UPSTREAM or function is None:
                continue
            out.append(Override(name, klass, function, *_upstream(name)))
    return out


def _shown(path: Path) -> str:
    """``path`` relative to the source root where it lies under it."""
    path = path.resolve()
    return (path.relative_to(SOURCE_ROOT) if path.is_relative_to(SOURCE_ROOT) else path).as_posix()


def _where(owner: type, function) -> str:
    """``file:Class.function``, as the diff's file labels show it."""
    path = _shown(Path(inspect.getsourcefile(function)))
    return f"{path}:{owner.__qualname__}.{function.__name__}"


def _source(function) -> list[str]:
    return textwrap.dedent(inspect.getsource(function)).splitlines(keepends=True)


def _head(lines: list[str]) -> list[str]:
    """A function's decorators, signature and docstring (the lines before its code)."""
    node = ast.parse("".join(lines)).body[0]
    first = node.body[0]
    return lines[:first.end_lineno if ast.get_docstring(node) is not None else first.lineno - 1]


def calls_upstream(o: Override) -> bool:
    """Whether the design's function calls upstream's through super()."""
    return re.search(rf"\bsuper\(\)\.{re.escape(o.name)}\(", inspect.getsource(o.function)) \
        is not None


def render_override(o: Override) -> str:
    """The unified diff of upstream's function against the design's."""
    fromfile, tofile = _where(o.upstream_owner, o.upstream), _where(o.owner, o.function)
    old = _source(o.upstream)
    note = ""
    if calls_upstream(o):
        old = _head(old)
        note = (f"# {o.owner.__qualname__}.{o.name} calls upstream's through super(): "
                "upstream's head only\n")
    text = "".join(difflib.unified_diff(old, _source(o.function), fromfile, tofile))
    return note + (text or f"# {tofile}: identical to {fromfile}\n")


def render(cls: type) -> str:
    """The design's header, then the diff of every function it overrides."""
    found = functions(cls)
    lines = [f"# {cls.name}: {cls.description}\n"]
    if cls.fix != Kernel.fix:
        lines.append(f"# fix: {cls.fix}\n")
    added = [o for o in found if o.upstream is None]
    if added:
        lines.append("# functions upstream does not have:\n")
        lines += [f"#   {_where(o.owner, o.function)}\n" for o in added]
    lines.append("# Below, each function it overrides against the upstream (model.kernel.Kernel)\n"
                 "# function it replaces. Rendered by python -m model.variants.diff (--write\n"
                 "# regenerates docs/variants/).\n")
    return "".join(lines) + "".join(render_override(o) for o in found if o.upstream is not None)


def documented() -> list[type]:
    """The built-in designs whose diffs are stored, in registration order."""
    return [cls for name, cls in VARIANTS.items() if name in BUILTIN and cls is not Kernel]


def diff_path(name: str) -> Path:
    return DIFF_DIR / f"{name}.diff"


def stale() -> list[str]:
    """What is wrong with docs/variants/, one line each: a stored diff that is missing,
    out of date, or belongs to no built-in design."""
    out = []
    for cls in documented():
        path = diff_path(cls.name)
        shown = _shown(path)
        if not path.is_file():
            out.append(f"{shown} is missing")
        elif path.read_text() != render(cls):
            out.append(f"{shown} is out of date")
    names = {cls.name for cls in documented()}
    out += [f"{_shown(p)} belongs to no built-in design"
            for p in sorted(DIFF_DIR.glob("*.diff")) if p.stem not in names]
    return out


def write() -> list[Path]:
    """Rewrite docs/variants/: one diff per built-in design, nothing else."""
    DIFF_DIR.mkdir(exist_ok=True)
    names = {cls.name for cls in documented()}
    for path in DIFF_DIR.glob("*.diff"):
        if path.stem not in names:
            path.unlink()
    written = []
    for cls in documented():
        path = diff_path(cls.name)
        text = render(cls)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.variants.diff",
                                     description="Show a design's overridden functions as a "
                                                 "unified diff against upstream's.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="a design name or path/to/file.py:Class (default: every built-in "
                             "design but upstream)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite docs/variants/*.diff")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if a stored diff no longer matches the code")
    args = parser.parse_args(argv)
    if (args.write or args.check) and not DIFF_DIR.parent.is_dir():
        print(f"error: {DIFF_DIR.parent} does not exist: --write and --check work in a source "
              "checkout of cowfuzz", file=sys.stderr)
        return 2
    if args.write:
        for path in write():
            print(f"wrote {_shown(path)}")
        return 0
    if args.check:
        out = stale()
        for line in out:
            print(line)
        if out:
            print(f"review the change, then run: {REGENERATE}")
        return 1 if out else 0
    try:
        classes = [load_design(name) for name in args.names] or documented()
    except VariantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(render(cls) for cls in classes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
