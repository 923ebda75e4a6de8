"""A state change of one step, as the model logs it and the trace, oracles and triage
read it.

A change is the tuple ``(obj, field, index, old, new)``: object ``obj`` (a folio,
a PTE table, an mm, a lock, ...) had its ``field`` changed from ``old`` to ``new``.
``index`` says which element of an array-like field changed -- the address of a
PTE or TLB entry, the slot of a PMD or a pin, the start of a VMA (a (start, end)
pair for the VMA as a whole) -- and is None for a plain field. A dotted field
names a member of that element: ``("vma.vm_flags", 4)`` is VMA 4's vm_flags.

A plain tuple rather than a class: the model logs a few hundred changes per
execution, and a tuple costs a fifth of an object with slots. Readers unpack it
(``for obj, field, index, old, new in step.changes``) and compare fields and
indexes as data; only ``field_text`` turns them into the trace's spelling.
"""

from __future__ import annotations

from typing import Any

#: which element of an array-like field: an address, a slot, or a (start, end) range
Index = int | tuple[int, int] | None

#: (obj, field, index, old, new)
Change = tuple[Any, str, Index, Any, Any]

_texts: dict[tuple[str, Index], str] = {}


def field_text(field: str, index: Index) -> str:
    """The field as the trace prints it: "pte[5]", "pin#3", "vma[4].vm_flags",
    "vma[4-8]", or the field itself when it has no index."""
    if index is None:
        return field
    key = (field, index)
    text = _texts.get(key)
    if text is None:
        head, dot, member = field.partition(".")
        if type(index) is tuple:
            where = f"[{index[0]}-{index[1]}]"
        elif head == "pin":
            where = f"#{index}"
        else:
            where = f"[{index}]"
        text = _texts[key] = head + where + dot + member
    return text
