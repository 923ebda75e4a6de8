"""The registry of designs (variants), and the loading of a user's own.

A design is a class that subclasses ``model.kernel.Kernel`` (upstream) and
overrides the kernel paths it changes. It is known everywhere by one name,
its class attribute ``name``: in tokens, signatures, crash folders and the
``found-on``/``expect`` lines of .cow files.

Two ways in, kept apart on purpose:

* ``get_variant(name)`` looks a *name* up in the registry. This is the only
  thing an input (a .cow file, a replay token) can reach, so opening an
  input never imports or runs code.
* ``load_design(spec)`` imports ``path/to/file.py:Class`` or
  ``package.module:Class`` and registers the class under its name. Only the
  user calls it: ``--variant``/``--designs`` on the command line, the pytest
  ini option ``cowfuzz_designs``, or their own code.

Built-in designs register here with ``@register`` (model/variants/cowpte/:
the COW PTE designs; model/variants/historical/: kernels with a known bug;
model/variants/mutants/: one race each, most of the deep tier of the bug benchmark).
model/variants/diff.py shows what a design changes against upstream.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import zlib
from pathlib import Path

from model.kernel import Kernel

VARIANTS: dict[str, type] = {"upstream": Kernel}
#: the names of the designs that ship with cowfuzz (the rest were declared by the user)
BUILTIN: set[str] = {"upstream"}

#: what a design name may look like: never a path, never a module reference
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")

HOW_TO_DECLARE = ("declare a design of your own with --designs path/to/file.py:Class on the "
                  "command line, or cowfuzz_designs in your pytest configuration")


class VariantError(ValueError):
    """A design name that is not registered, or a design spec that does not load."""


def is_design_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name))


def register(cls: type) -> type:
    """Class decorator: make a built-in design known by its ``name``."""
    if cls.name in VARIANTS:
        raise ValueError(f"variant {cls.name!r} registered twice")
    VARIANTS[cls.name] = cls
    BUILTIN.add(cls.name)
    return cls


def base_design(cls: type) -> type:
    """The design ``cls`` changes: its nearest ancestor with a name of its own (upstream
    for most; reuse-refcount for the bugs put into v5.9's COW). A violation the base
    shows too, on the same program and schedule, is the base's, not ``cls``'s."""
    return next((b for b in cls.__mro__[1:] if b is Kernel or b.__dict__.get("name")), Kernel)


def get_variant(name: str) -> type:
    """The registered design called ``name``. Never imports anything: inputs reach this."""
    cls = VARIANTS.get(name)
    if cls is not None:
        return cls
    shown = name if len(name) <= 80 else name[:77] + "..."
    if not is_design_name(name):
        raise VariantError(f"{shown!r} is not a variant name: inputs name a design by its "
                           f"registered name only; {HOW_TO_DECLARE}")
    raise VariantError(f"unknown variant {shown!r} (built in: {', '.join(sorted(BUILTIN))}); "
                       f"{HOW_TO_DECLARE}")


def is_spec(text: str) -> bool:
    """Whether ``text`` names code to load (``file.py:Class``, ``module:Class``)."""
    return ":" in text


def _import(where: str, base: Path | None):
    if where.endswith(".py") or "/" in where:
        path = Path(where)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise VariantError(f"design file {path} does not exist")
        path = path.resolve()
        modname = f"cowfuzz_user_design_{zlib.crc32(str(path).encode()):08x}"
        module = sys.modules.get(modname)
        if module is None:
            spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[modname]
                raise
        return module
    return importlib.import_module(where)


def load_design(spec: str, base: Path | None = None) -> type:
    """Import the user's design ``file.py:Class`` (relative to ``base``, default the working
    folder) or ``package.module:Class``, register it under its ``name`` and return it.
    Only for what the user names; never for what an input names."""
    if not is_spec(spec):
        return get_variant(spec)
    where, _, clsname = spec.rpartition(":")
    try:
        module = _import(where, base)
    except VariantError:
        raise
    except Exception as exc:   # a user's file: report, never crash the caller
        raise VariantError(f"cannot import design {spec}: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, clsname, None)
    if not (isinstance(cls, type) and issubclass(cls, Kernel)):
        raise VariantError(f"{spec}: {clsname} is not a subclass of model.kernel.Kernel")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not is_design_name(name):
        raise VariantError(f"{spec}: give {clsname} a class attribute name = '...' (letters, "
                           "digits, '-', '_', '.'): the design is known by it in tokens, "
                           "signatures, crash folders and expect lines")
    known = VARIANTS.get(name)
    if known is not None and known is not cls:
        if name in BUILTIN or (known.__module__, known.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise VariantError(f"{spec}: the name {name!r} is already taken by "
                               f"{known.__module__}.{known.__qualname__}")
    VARIANTS[name] = cls
    return cls


def load_designs(specs, base: Path | None = None) -> list[type]:
    """``load_design`` for each spec (a list from the command line or a configuration)."""
    return [load_design(spec, base) for spec in specs]


def declared_specs(classes) -> list[str]:
    """Specs that load the user-declared designs among ``classes`` in another process."""
    out = []
    for cls in classes:
        if cls.name in BUILTIN:
            continue
        module = sys.modules.get(cls.__module__)
        path = getattr(module, "__file__", None)
        if cls.__module__.startswith("cowfuzz_user_design_") and path:
            out.append(f"{path}:{cls.__qualname__}")
        else:
            out.append(f"{cls.__module__}:{cls.__qualname__}")
    return out


# The built-in designs register themselves on import (after VARIANTS exists).
from model.variants import cowpte, historical, mutants  # noqa: E402,F401
