"""Trace: every step of an execution, kept as data, rendered as text.

A step is one task running from one scheduling point to the next: its
index, its task, the label of the point it resumed at ("<kernel
function>:<what>"), its context (mm, va), the state it changed (object,
field, index, before, after: model/changes.py) and its events (an operation starting or returning,
blocking on a lock, a fault injected). Building the trace keeps references
only; names and values are rendered when asked, from fields that never
change after the step, so rendering is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model import flags
from model.changes import field_text

#: VM_* flags by value, in bit order, for rendering vm_flags by name
VM_FLAG_NAMES = tuple(sorted(((value, name) for name, value in vars(flags).items()
                              if name.startswith("VM_") and not name.startswith("VM_FAULT")),
                             key=lambda vn: vn[0]))


def fmt_value(v) -> str:
    if v is None:
        return "-"
    if v is True:
        return "1"
    if v is False:
        return "0"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{fmt_value(x)}" for k, x in sorted(v.items())) + "}"
    return str(v) if isinstance(v, (int, str)) else repr(v)


def vm_flags_text(value: int) -> str:
    """A vm_flags value by name, as mm.h spells the bits: VM_READ|VM_WRITE|..."""
    names = [name for bit, name in VM_FLAG_NAMES if value & bit]
    rest = value & ~sum(bit for bit, _name in VM_FLAG_NAMES)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


def fmt_field_value(field: str, v) -> str:
    """A changed field's value: vm_flags (a VMA's "vma" or "vma.vm_flags") by name,
    anything else by ``fmt_value``."""
    if isinstance(v, int) and not isinstance(v, bool) and field in ("vma", "vma.vm_flags"):
        return vm_flags_text(v)
    return fmt_value(v)


def event_text(task: str, event) -> str:
    """One event of a step (an operation starting or returning, a block, an injected
    fault, an exit) as the trace and the report print it."""
    kind = event[0]
    if kind == "op":
        return f"{task} > {event[1]}"
    if kind == "ret":
        return f"{task} < {event[1]} = {fmt_value(event[2])}"
    if kind == "block":
        return f"{task} blocks on {event[1]}"
    if kind == "inject":
        return f"{task} fault injected: {event[1]} fails"
    if kind == "done":
        return f"{task} exits"
    return f"{task} {' '.join(fmt_value(x) for x in event)}"


def obj_name(obj) -> str:
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) else repr(obj)


@dataclass
class Trace:
    task_names: list[str]
    steps: list                          # fuzz.scheduler.Step records
    verdict: str = "ok"
    program_text: str | None = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_scheduler(cls, sched, program=None) -> "Trace":
        return cls([t.name for t in sched.tasks], list(sched.steps))

    # -- data views --------------------------------------------------------------
    def changes_of(self, step):
        return [(obj_name(o), field_text(f, i), fmt_field_value(f, a), fmt_field_value(f, b))
                for o, f, i, a, b in step.changes]

    def step_objects(self, step) -> str:
        parts = []
        if step.ctx:
            parts.append(f"mm={step.ctx[0]}")
            if len(step.ctx) > 1 and step.ctx[1] is not None:
                parts.append(f"va={step.ctx[1]}")
        return " ".join(parts)

    def to_json(self) -> dict:
        return {
            "tasks": self.task_names,
            "verdict": self.verdict,
            "steps": [
                {"i": s.index, "task": self.task_names[s.tid], "label": s.label,
                 "ctx": list(s.ctx),
                 "changes": [list(c) for c in self.changes_of(s)],
                 "events": [[fmt_value(x) for x in e] for e in s.events]}
                for s in self.steps
            ],
        }

    # -- text --------------------------------------------------------------------
    def render_text(self) -> str:
        """The lane log (``lane_lines``) and the verdict."""
        rows = [LaneRow(s.index, s.tid, s.label, self.step_objects(s), self.changes_of(s),
                        s.events) for s in self.steps]
        return "\n".join(lane_lines(self.task_names, rows) + [f"Verdict: {self.verdict}"]) + "\n"


@dataclass
class LaneRow:
    """One step as the lane log prints it (the report's ReportStep has the same fields)."""

    index: int
    tid: int
    label: str
    objects: str                     # "mm=1 va=0 ..."
    changes: list                    # [(object, field, before, after)], rendered
    events: tuple = ()
    mark: str = ""                   # ">" on a step the reader should look at
    state: list = field(default_factory=list)   # lines shown under the step


def lane_lines(task_names, rows) -> list[str]:
    """The one text form of a trace (``cowfuzz run``, ``explore``, trace.txt): a header,
    then per step one line, never cut -- mark, index, a gutter column per task ('*' the
    task that ran, '.' a task alive), task, label, [objects], every change -- and under it,
    indented, its events and state lines."""
    n = len(task_names)
    first, last = {}, {}
    for r in rows:
        first.setdefault(r.tid, r.index)
        last[r.tid] = r.index
    width = max((len(t) for t in task_names), default=4)
    out = [f"   step {''.join(str(i % 10) for i in range(n))}  {'task':<{width}}  label"]
    pad = " " * (9 + n) + "  "
    for r in rows:
        gutter = "".join("*" if t == r.tid else
                         ("." if first.get(t, 1 << 30) <= r.index <= last.get(t, -1) else " ")
                         for t in range(n))
        task = task_names[r.tid]
        line = f"{r.mark or ' ':>2} {r.index:>4} {gutter}  {task:<{width}}  {r.label}"
        if r.objects:
            line += f"  [{r.objects}]"
        if r.changes:
            line += "  " + "; ".join(f"{o}.{f} {a}->{b}" for o, f, a, b in r.changes)
        out.append(line)
        out += [pad + event_text(task, e) for e in r.events]
        out += [pad + st for st in r.state]
    return out
