"""What a violation is about: the conflicting steps, and the signature that dedups it.

The oracle names objects (a page, an address of an mm, a PTE table, a swap
slot). The *conflicting pair* is the last step that changed one of them
(usually the step after which the oracle fired) and, before it, the last
step of another task that changed one of them: the two accesses a kernel
developer looks at first, as in a KCSAN report.

The signature is oracle + variant + the two steps' labels: stable across
the many inputs that reach the same interleaving, never raw bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fuzz.trace import obj_name


@dataclass(frozen=True)
class Conflict:
    first: object          # the earlier Step (another task, when there is one)
    second: object         # the step the violation follows from
    obj: str               # the object they share, by name


def violation_keys(v) -> tuple[set, set]:
    """(object names, PTE/TLB field names) a violation is about."""
    o = v.objects
    names, fields = set(), set()
    if "pfn" in o:
        names.add(f"pfn{o['pfn']}")
    if "table" in o:
        names.add(str(o["table"]))
    if "swp" in o:
        names.add(f"swp{o['swp']}")
    if "va" in o:
        fields.add(f"pte[{o['va']}]")
        fields.add(f"tlb[{o['va']}]")
    return names, fields


def _touches(step, names, fields):
    for obj, field, _a, _b in step.changes:
        if field in fields:
            return f"{obj_name(obj)}.{field}"
        name = obj_name(obj)
        if name in names:
            return name
    return None


def find_conflict(trace, violation) -> Conflict | None:
    steps = trace.steps
    if not steps or violation is None:
        return None
    last = min(violation.step if violation.step is not None else len(steps) - 1, len(steps) - 1)
    names, fields = violation_keys(violation)
    second = None
    for i in range(last, -1, -1):
        hit = _touches(steps[i], names, fields)
        if hit:
            second = (steps[i], hit)
            break
    if second is None:
        s = steps[last]
        return Conflict(s, s, "-")
    b, obj = second
    first = None
    for i in range(b.index - 1, -1, -1):
        s = steps[i]
        if s.tid != b.tid and trace.task_names[s.tid] not in ("setup", "teardown"):
            hit = _touches(s, names, fields)
            if hit:
                first = s
                break
    if first is None:
        for i in range(b.index - 1, -1, -1):
            if _touches(steps[i], names, fields):
                first = steps[i]
                break
    return Conflict(first or b, b, obj)


def signature(outcome, variant: str) -> str:
    """oracle + variant + defining labels; e.g. 'writable-shared:upstream:a|b'."""
    if outcome.violation is None:
        kind = outcome.verdict
        last = outcome.error.strip().splitlines()[-1] if outcome.error else "-"
        return f"{kind}:{variant}:{last}"
    c = find_conflict(outcome.trace, outcome.violation)
    labels = f"{c.first.label}|{c.second.label}" if c else "-"
    return f"{outcome.violation.oracle}:{variant}:{labels}"


def signature_slug(sig: str) -> str:
    """A directory name: the oracle and a short hash of the whole signature."""
    oracle = sig.split(":", 1)[0]
    return f"{oracle}-{hashlib.sha256(sig.encode()).hexdigest()[:10]}"
