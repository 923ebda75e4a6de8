"""What a violation is about: the conflicting steps, and the signature that dedups it.

The oracle names objects (a page, an address of an mm, a PTE table, a swap
slot). The *conflicting pair* is the last step that changed one of them
(usually the step after which the oracle fired) and, before it, the last
step of another task that changed one of them: the two accesses a kernel
developer looks at first, as in a KCSAN report.

The signature (see ``signature``) is what dedups findings: the oracle, the
variant, where it fired and what it says, without this run's objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import traceback
from dataclasses import dataclass

from fuzz.runtime.trace import obj_name
from model.changes import field_text
from model.oracles.errors import KernelBug


@dataclass(frozen=True)
class Conflict:
    first: object          # the earlier Step (another task, when there is one)
    second: object         # the step the violation follows from
    obj: str               # the object they share, by name


def violation_keys(v) -> tuple[set, set]:
    """(object names, (field, index) of the PTEs and TLB entries) a violation is about."""
    o = v.objects
    names, fields = set(), set()
    if "pfn" in o:
        names.add(f"pfn{o['pfn']}")
    if "table" in o:
        names.add(str(o["table"]))
    if "swp" in o:
        names.add(f"swp{o['swp']}")
    if "va" in o:
        fields.add(("pte", o["va"]))
        fields.add(("tlb", o["va"]))
    return names, fields


def _touches(step, names, fields):
    for obj, field, index, _a, _b in step.changes:
        if (field, index) in fields:
            return f"{obj_name(obj)}.{field_text(field, index)}"
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


#: model helpers that report on behalf of their caller: a violation raised in one is
#: located at the first kernel path above it
_HELPERS = frozenset({
    "bug", "pmd_clear_bad", "pte_offset_map", "pte_offset_map_lock", "ptep_get", "set_pte_at",
    "pte_changed", "set_pmd", "walk_pmd", "_live_pmd", "_pmd", "lock", "unlock", "wait",
    "point", "vm_normal_page", "check_foll_write_target", "sanity_check_pinned_pages",
})


#: frames that are not kernel code: the fuzzer and Python's own library
_NOT_KERNEL = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
               os.path.dirname(os.path.abspath(contextlib.__file__)) + os.sep)


def raise_site(exc) -> str:
    """The kernel function a violation was raised in (its innermost model frame that is
    not a helper), like the function a kernel BUG report names."""
    tb = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    for frame in reversed(tb):
        path = os.path.abspath(frame.filename)
        if path.startswith(_NOT_KERNEL) or frame.name in _HELPERS:
            continue
        return frame.name
    return "-"


def title(message: str) -> str:
    """A violation's message without the objects and numbers of this run."""
    t = message.split(": ", 1)[1] if ": " in message else message
    t = re.sub(r"\[[^\]]*\]$", "", t).strip()
    t = re.sub(r"\b(pfn|swp|mm|t)\d+(:[A-Z]+)?", r"\1N", t)
    t = re.sub(r"\bP\d+(\.T\d+)?", "PN", t)
    t = re.sub(r"\bv\d+\([^)]*\)", "vN", t)
    return re.sub(r"\d+", "N", t)


def signature(outcome, variant: str) -> str:
    """oracle : variant : where : what -- stable across the inputs that reach the same
    bug, never raw bytes. "where" is the function that raised a kernel assertion (as a
    kernel BUG report names it), or for a state oracle the function of the step that
    last changed the object it names (the second of the conflicting pair); "what" is the
    message with this run's objects and numbers taken out."""
    if outcome.violation is None:
        kind = outcome.verdict
        last = outcome.error.strip().splitlines()[-1] if outcome.error else "-"
        return f"{kind}:{variant}:{last}"
    v = outcome.violation
    if isinstance(v, KernelBug):
        where = raise_site(v)
    else:
        c = find_conflict(outcome.trace, v)
        where = c.second.label.split(":")[0] if c else "-"
    return f"{v.oracle}:{variant}:{where}:{title(str(v))}"


def split_signature(sig: str) -> tuple[str, str, str, str]:
    """(oracle, variant, where, what) of a signature; a model error's "where" is "-"."""
    parts = sig.split(":", 2)
    if len(parts) < 3:
        return parts[0], parts[1] if len(parts) > 1 else "-", "-", "-"
    oracle, variant, rest = parts
    if oracle == "model-error":
        return oracle, variant, "-", rest
    where, _, what = rest.partition(":")
    return oracle, variant, where, what or "-"


def signature_slug(sig: str) -> str:
    """A directory name: the oracle and a short hash of the whole signature."""
    oracle = sig.split(":", 1)[0]
    return f"{oracle}-{hashlib.sha256(sig.encode()).hexdigest()[:10]}"
