"""The registry of designs (variants) and loading of a user's own.

A variant is a class that subclasses ``model.kernel.Kernel`` (upstream) and
overrides the kernel paths its design changes. Built-in variants register
here by name with ``@register`` (model/variants/cowpte*.py: the COW PTE
designs; model/variants/historical.py: kernels with a known bug); a user's
variant is named ``path/to/file.py:Class`` or ``package.module:Class``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from pathlib import Path

from model.kernel import Kernel

VARIANTS: dict[str, type] = {"upstream": Kernel}


class VariantError(ValueError):
    """A variant name that does not resolve to a Kernel subclass."""


def register(cls: type) -> type:
    """Class decorator: make a built-in variant known by its ``name``."""
    if cls.name in VARIANTS:
        raise ValueError(f"variant {cls.name!r} registered twice")
    VARIANTS[cls.name] = cls
    return cls


def load_variant(spec: str) -> type:
    """Import ``file.py:Class`` or ``package.module:Class``."""
    if ":" not in spec:
        raise VariantError(f"unknown variant {spec!r} (known: {', '.join(sorted(VARIANTS))}; "
                           "or give path/to/file.py:Class or package.module:Class)")
    where, _, clsname = spec.rpartition(":")
    try:
        if where.endswith(".py") or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise VariantError(f"variant file {where} does not exist")
            key = zlib.crc32(str(path.resolve()).encode())
            modname = f"cowfuzz_user_variant_{key:08x}"
            module = sys.modules.get(modname)
            if module is None:
                spec_ = importlib.util.spec_from_file_location(modname, path)
                module = importlib.util.module_from_spec(spec_)
                sys.modules[modname] = module
                spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except VariantError:
        raise
    except Exception as exc:   # a user's file: report, never crash the caller
        raise VariantError(f"cannot import variant {spec}: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, clsname, None)
    if not (isinstance(cls, type) and issubclass(cls, Kernel)):
        raise VariantError(f"{spec}: {clsname} is not a subclass of model.kernel.Kernel")
    return cls


def get_variant(name: str) -> type:
    """A built-in variant by name, or a user's variant by file/module path."""
    cls = VARIANTS.get(name)
    if cls is not None:
        return cls
    return load_variant(name)


# The built-in designs register themselves on import (after VARIANTS exists).
from model.variants import cowpte, historical  # noqa: E402,F401
