"""The crash report: what a kernel developer reads first, as data and as text.

``build_report`` turns a failing run into a ``Report`` (pure data, shared
by the text form here and the HTML form in fuzz/triage/html_report.py):

* a header in the form of a kernel report -- "BUG: cowfuzz: <oracle> in
  <label A> / <label B>", A and B the two steps that conflict on the object
  the oracle names (fuzz/triage/signature.py:find_conflict) -- with the variant,
  model version, signature, first hit, hits, size before and after
  minimization, the replay command and token;
* the conflicting accesses, one line each, as KCSAN prints them;
* the lane log: one line per step with a gutter column per task, ">"
  on the conflicting steps, and a STATE line after every step that changed
  an object the oracle names, showing that object's fields;
* the verdict: the oracle, the objects it names and their final state, and
  a "because" list -- the conflicting steps and the last change of every
  field of the named objects, in step order -- built from the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fuzz.runtime.trace import fmt_value, lane_lines, obj_name
from fuzz.triage.minimize import shrink_text
from fuzz.triage.signature import find_conflict, signature, violation_keys
from model.changes import field_text


@dataclass
class ReportStep:
    index: int
    tid: int
    task: str
    label: str
    objects: str                     # "mm=1 va=0 pfn=5 table=t1"
    result: str                      # what the step returned or waited on, short
    changes: list                    # [(object, field, before, after)]
    events: list                     # [[kind, ...]] as strings
    mark: str = ""                   # ">" on the conflicting steps
    state: list = field(default_factory=list)   # STATE lines after this step


@dataclass
class Report:
    title: str
    oracle: str
    variant: str
    model_version: str
    signature: str
    verdict: str
    token: str
    replay: str
    tasks: list
    steps: list
    conflict: dict | None
    named: list                      # names of the objects the oracle names
    objects: dict                    # the violation's objects (mm=, va=, pfn=, ...)
    final_state: dict                # named object -> {field: value}
    because: list
    meta: dict = field(default_factory=dict)   # first hit, hits, sizes (from a campaign)

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["steps"] = [s.__dict__ for s in self.steps]
        return d


def _named_objects(violation) -> tuple[list, set]:
    names, fields = violation_keys(violation) if violation is not None else (set(), set())
    return sorted(names), fields


def _step_objects(trace, step) -> str:
    """The trace's ``mm= va=``, plus the page and PTE table the step changed."""
    base = trace.step_objects(step)
    parts = [base] if base else []
    pfn = table = None
    for obj, f, _i, _a, _b in step.changes:
        name = obj_name(obj)
        if pfn is None and name.startswith("pfn"):
            pfn = name[3:]
        if table is None and f == "pte":
            table = name
    if pfn is not None:
        parts.append(f"pfn={pfn}")
    if table is not None:
        parts.append(f"table={table}")
    return " ".join(parts)


def _step_result(step) -> str:
    out = []
    for e in step.events:
        if e[0] == "ret":
            out.append(f"{e[1]} = {fmt_value(e[2])}")
        elif e[0] == "block":
            out.append(f"blocks on {e[1]}")
        elif e[0] == "inject":
            out.append(f"{e[1]} fails (injected)")
    return "; ".join(out)


def _touches(step, names, fields) -> list:
    """The changes of ``step`` to a named object or field, as (object, field, a, b) text."""
    hits = []
    for obj, f, i, a, b in step.changes:
        name = obj_name(obj)
        a, b = fmt_value(a), fmt_value(b)
        points_at = f == "pmd" and any(v.split(":")[0] in names for v in (a, b))
        if name in names or (f, i) in fields or points_at:
            hits.append((name, field_text(f, i), a, b))
    return hits


def build_report(program, variant: str, outcome, *, meta: dict | None = None) -> Report:
    """The report of a failing run (``outcome`` of ``program`` on ``variant``)."""
    from fuzz.program.replay_token import make_token, model_version
    trace = outcome.trace
    v = outcome.violation
    names, fields = _named_objects(v)
    conflict = find_conflict(trace, v) if v is not None else None
    marked = {conflict.first.index, conflict.second.index} if conflict else set()
    oracle = outcome.status
    if conflict is not None:
        title = f"BUG: cowfuzz: {oracle} in {conflict.first.label} / {conflict.second.label}"
    else:
        last = trace.steps[-1].label if trace.steps else "-"
        title = f"BUG: cowfuzz: {oracle} in {last}"
    state: dict[str, dict] = {}
    steps = []
    last_change: dict[tuple, int] = {}
    for s in trace.steps:
        touched = set()
        for obj, f, i, _a, b in s.changes:
            name = obj_name(obj)
            if name in names:
                state.setdefault(name, {})[field_text(f, i)] = fmt_value(b)
                touched.add(name)
        if trace.task_names[s.tid] not in ("setup", "teardown"):
            for name, f, _a, _b in _touches(s, names, fields):
                last_change[(name, f)] = s.index
        lines = [f"STATE {n} " + " ".join(f"{k}={val}" for k, val in state[n].items())
                 for n in sorted(touched)]
        steps.append(ReportStep(s.index, s.tid, trace.task_names[s.tid], s.label,
                                _step_objects(trace, s), _step_result(s),
                                [list(c) for c in trace.changes_of(s)],
                                [[fmt_value(x) for x in e] for e in s.events],
                                ">" if s.index in marked else "", lines))
    conf = None
    if conflict is not None:
        conf = {"first": conflict.first.index, "second": conflict.second.index,
                "object": conflict.obj,
                "first_task": trace.task_names[conflict.first.tid],
                "second_task": trace.task_names[conflict.second.tid],
                "first_label": conflict.first.label, "second_label": conflict.second.label,
                "first_changes": _touches(conflict.first, names, fields),
                "second_changes": _touches(conflict.second, names, fields)}
    because = _because(trace, v, conflict, last_change, names, fields)
    token = make_token(program, variant)
    return Report(title, oracle, variant, model_version(),
                  signature(outcome, variant), trace.verdict, token,
                  f"cowfuzz run {token}", list(trace.task_names), steps, conf, names,
                  dict(v.objects) if v is not None else {}, state, because, dict(meta or {}))


def _because(trace, v, conflict, last_change, names, fields) -> list:
    """The steps that made the violation, in order: the conflicting pair and the last
    change of every field of the objects the oracle names."""
    picks = {}
    for (name, f), idx in last_change.items():
        picks.setdefault(idx, []).append((name, f))
    if conflict is not None:
        picks.setdefault(conflict.first.index, [])
        picks.setdefault(conflict.second.index, [])
    out = []
    steps = trace.steps
    for idx in sorted(picks)[-8:]:
        s = steps[idx]
        what = "; ".join(f"{n}.{f} {a} -> {b}" for n, f, a, b in _touches(s, names, fields))
        role = ""
        if conflict is not None and idx == conflict.second.index:
            role = " (conflicting access B)"
        elif conflict is not None and idx == conflict.first.index:
            role = " (conflicting access A)"
        out.append(f"step {idx}: {trace.task_names[s.tid]} at {s.label}{role}"
                   + (f": {what}" if what else ""))
    if v is not None:
        out.append(f"then {v.oracle}: {v.message}")
    return out


# -- text -------------------------------------------------------------------------------------
def header_rows(report: Report) -> list[tuple[str, str]]:
    """The header under the title, (name, value) rows, as the text and the HTML report
    show it: variant, model version, signature, and from a campaign's meta the first hit,
    the hits and the size before and after minimization."""
    meta = report.meta or {}
    rows = [("variant", report.variant), ("model", report.model_version),
            ("signature", report.signature)]
    if meta.get("first_hit"):
        fh = meta["first_hit"]
        execution = fh.get("execution", "?")
        execution = f"{execution:,}" if isinstance(execution, int) else str(execution)
        seconds = fh.get("seconds", 0)
        seconds = f"{seconds:.1f}" if isinstance(seconds, (int, float)) else str(seconds)
        rows.append(("first hit", f"execution {execution} after {seconds} s "
                                  f"({fh.get('strategy', '?')}, seed {fh.get('seed', '?')})"))
    if meta.get("hits"):
        rows.append(("hits", str(meta["hits"])))
    if meta.get("size_before") and meta.get("size_after"):
        rows.append(("size", shrink_text(meta["size_before"], meta["size_after"])))
    return rows


def render_trace(report: Report) -> str:
    """The lane log and the verdict of a run, clean or not (``cowfuzz run`` on a clean run;
    a failing run gets the whole ``render_text``)."""
    return "\n".join([*lane_lines(report.tasks, report.steps),
                      f"Verdict: {report.verdict}"]) + "\n"


def render_text(report: Report) -> str:
    """trace.txt: header, conflicting accesses, lane log, verdict."""
    out = [report.title, ""]
    rows = header_rows(report) + [("replay", report.replay.split(" cowfuzz1:")[0] + " <token>"),
                                  ("token", report.token)]
    width = max(len(k) for k, _ in rows) + 1
    out += [f"{k + ':':<{width}} {val}" for k, val in rows]
    c = report.conflict
    if c is not None:
        out += ["", f"Conflicting accesses to {c['object']}:"]
        out.append(f"  access by {c['second_task']} at step {c['second']}, {c['second_label']}:"
                   + _changes(c["second_changes"]))
        out.append(f"  previous access by {c['first_task']} at step {c['first']}, "
                   f"{c['first_label']}:" + _changes(c["first_changes"]))
    out += ["", "Lane log:", *lane_lines(report.tasks, report.steps)]
    out += ["", f"Verdict: {report.verdict}"]
    if report.objects:
        out.append("  objects: " + " ".join(f"{k}={v}" for k, v in report.objects.items()))
    for name in report.named:
        if name in report.final_state:
            out.append(f"  final state of {name}: " + " ".join(
                f"{k}={v}" for k, v in report.final_state[name].items()))
    if report.because:
        out.append("  because:")
        out += [f"    {i}. {b}" for i, b in enumerate(report.because, 1)]
    return "\n".join(out) + "\n"


def _changes(changes) -> str:
    if not changes:
        return ""
    return " " + "; ".join(f"{n}.{f} {a} -> {b}" for n, f, a, b in changes)
