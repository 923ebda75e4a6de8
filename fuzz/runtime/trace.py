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

from model.changes import field_text


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
        return [(obj_name(o), field_text(f, i), fmt_value(a), fmt_value(b))
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
    def _lifetimes(self):
        first, last = {}, {}
        for s in self.steps:
            first.setdefault(s.tid, s.index)
            last[s.tid] = s.index
        return first, last

    def render_text(self, *, changes: bool = True) -> str:
        """One line per step: index, a gutter column per task ('*' runs, '.' alive),
        task, label, objects, changes; a line per operation, result and block."""
        names = self.task_names
        first, last = self._lifetimes()
        width = max((len(n) for n in names), default=4)
        out = []
        header = "step " + "".join(str(i % 10) for i in range(len(names)))
        out.append(f"{header}  {'task':<{width}}  label")
        for s in self.steps:
            gutter = "".join(
                "*" if t == s.tid else ("." if first.get(t, 1 << 30) <= s.index <= last.get(t, -1)
                                        else " ")
                for t in range(len(names)))
            line = f"{s.index:>4} {gutter}  {names[s.tid]:<{width}}  {s.label}"
            objs = self.step_objects(s)
            if objs:
                line += f"  [{objs}]"
            if changes and s.changes:
                line += "  " + "; ".join(f"{o}.{f} {a}->{b}" for o, f, a, b in self.changes_of(s))
            out.append(line)
            pad = " " * (5 + len(names)) + "  "
            out.extend(pad + event_text(names[s.tid], e) for e in s.events)
        out.append(f"verdict: {self.verdict}")
        return "\n".join(out) + "\n"
