"""The HTML crash report: the Report of fuzz/triage/report.py as one self-contained page.

``render_html(report)`` turns a ``fuzz.report.Report`` (and nothing else) into
one HTML file a kernel developer opens in a browser, offline:

* the header of the text report -- the title ("BUG: cowfuzz: <oracle> in <A> /
  <B>"), variant, model version, signature, first hit, hits and sizes when the
  report's meta has them -- and the replay command with a copy button;
* the conflicting accesses, KCSAN style, each linking to its step;
* swimlanes: a column per task, time downward, one row per step so time reads
  downward across lanes; each step is a compact box (``.step``, id ``step-N``,
  a linkable anchor ``#step-N``) in its task's column with its label and
  ``objects -> result``; a task's life is a thin line in its lane, and the
  time it spends blocked (from a step with a "block" event to its next step)
  a hatched bar; the conflicting pair is highlighted and joined by an arrow
  labelled with the object they share (an SVG overlay the script draws from
  the two boxes' positions);
* the verdict: the oracle's message, the objects it names, their final state
  and the "because" list, whose steps link to their boxes;
* a details panel: hovering or focusing a step shows every field it changed
  (before -> after), its events and STATE lines; ``j``/``k`` select the
  next/previous step, scroll it into view and put it in the URL's hash.

The page loads nothing: all CSS and JavaScript are inline (kept in report.css
and report.js beside this module, package data), no font, image or library
from elsewhere, and a Content-Security-Policy meta tag forbids every
network load. The report itself is embedded as JSON (``<script
type="application/json" id="trace">``, ``report.to_json()`` with ``<``, ``>``
and ``&`` escaped so it cannot close its script tag); the script reads the
step details from it. The output is deterministic: the same report gives the
same bytes.

``write_report(program, variant, variant_cls, out_path, label)`` is ``cowfuzz
report FILE|TOKEN -o OUT.html``: replay a program and write its report.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
from html import escape
from pathlib import Path

from fuzz.triage.report import header_rows

#: forbids every load from the network; inline CSS and JS only, images only as data: URIs
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")


def _e(s) -> str:
    return escape(str(s), quote=True)


def embed_json(data) -> str:
    """``data`` as JSON safe inside a <script> element: no "<", ">" or "&" (nor U+2028/9),
    so no "</script>" or "<!--" can end or confuse the element."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# -- header ------------------------------------------------------------------------------------
def _changes_text(changes) -> str:
    return "; ".join(f"{n}.{f} {a} \u2192 {b}" for n, f, a, b in changes)


def _header(report) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in header_rows(report))
    out = [f'<header id="top"><h1>{_e(report.title)}</h1>',
           f'<dl class="meta">{rows}<dt>replay</dt><dd class="replay">'
           f'<code id="replay">{_e(report.replay)}</code> '
           f'<button type="button" id="copy-replay" title="copy the replay command">copy</button>'
           f"</dd></dl>"]
    c = report.conflict
    if c is not None:
        out.append(f'<section id="conflict"><h2>Conflicting accesses to '
                   f'<span class="obj-name">{_e(c["object"])}</span></h2><ul>')
        out.append(f'<li><span class="badge b">B</span> access by {_e(c["second_task"])} at '
                   f'<a href="#step-{int(c["second"])}">step {int(c["second"])}</a>, '
                   f'<code>{_e(c["second_label"])}</code>'
                   + (f': {_e(_changes_text(c["second_changes"]))}' if c["second_changes"] else "")
                   + "</li>")
        out.append(f'<li><span class="badge a">A</span> previous access by {_e(c["first_task"])} '
                   f'at <a href="#step-{int(c["first"])}">step {int(c["first"])}</a>, '
                   f'<code>{_e(c["first_label"])}</code>'
                   + (f': {_e(_changes_text(c["first_changes"]))}' if c["first_changes"] else "")
                   + "</li></ul></section>")
    out.append("</header>")
    return "\n".join(out)


# -- lanes -------------------------------------------------------------------------------------
def _hue(tid: int) -> int:
    return (tid * 67 + 210) % 360


def _op_of(step) -> str | None:
    for e in step.events:
        if e and e[0] == "op":
            return " ".join(str(x) for x in e[1:])
    return None


def _block_of(step) -> str | None:
    for e in step.events:
        if e and e[0] == "block":
            return str(e[1]) if len(e) > 1 else "?"
    return None


def _lanes(report) -> str:
    n = max(len(report.tasks), 1 + max((s.tid for s in report.steps), default=0))
    tasks = list(report.tasks) + [f"task {i}" for i in range(len(report.tasks), n)]
    row_of = {s.index: pos + 2 for pos, s in enumerate(report.steps)}   # row 1: lane headers
    last_row = len(report.steps) + 1
    c = report.conflict or {}
    role = {}
    if c:
        role[c["first"]] = "a"
        role[c["second"]] = "b" if c["second"] != c["first"] else "ab"
    out = [f'<div class="lanes" id="lanes" style="--lanes:{n}">',
           '<div class="lh gutter">step</div>']
    for tid, name in enumerate(tasks):
        out.append(f'<div class="lh" style="grid-column:{tid + 2};--hue:{_hue(tid)}">'
                   f'{_e(name)}</div>')
    # zebra bands, behind everything
    for pos in range(1, len(report.steps), 2):
        out.append(f'<div class="band" style="grid-row:{pos + 2}"></div>')
    # life lines: from a task's first step to its last
    first, last = {}, {}
    for s in report.steps:
        first.setdefault(s.tid, row_of[s.index])
        last[s.tid] = row_of[s.index]
    for tid in sorted(first):
        out.append(f'<div class="life" style="grid-column:{tid + 2};grid-row:{first[tid]} / '
                   f'{last[tid] + 1};--hue:{_hue(tid)}"></div>')
    # blocked intervals: from a step that blocks to the task's next step
    next_row = {}
    for s in reversed(report.steps):
        s_next = next_row.get(s.tid)
        what = _block_of(s)
        if what is not None:
            start = row_of[s.index] + 1
            end = s_next if s_next is not None else last_row + 1
            if end > start:
                out.append(f'<div class="blocked" data-task="{s.tid}" data-from="{s.index}" '
                           f'style="grid-column:{s.tid + 2};grid-row:{start} / {end}" '
                           f'title="{_e(tasks[s.tid])} blocked on {_e(what)}">'
                           f'<span>blocked on {_e(what)}</span></div>')
        next_row[s.tid] = row_of[s.index]
    # the steps
    for s in report.steps:
        row = row_of[s.index]
        r = role.get(s.index)
        mark = {"a": "A", "b": "B", "ab": "AB"}.get(r, "")
        out.append(f'<a class="idx{" marked" if r else ""}" href="#step-{s.index}" '
                   f'style="grid-row:{row}">{_e(mark + " ") if mark else ""}{s.index}</a>')
        cls = ["step"]
        if r:
            cls += ["conflict", f"conflict-{r}"]
        if _block_of(s) is not None:
            cls.append("blocks")
        if s.state:
            cls.append("stated")
        line2 = s.objects + (f" \u2192 {s.result}" if s.result else "")
        op = _op_of(s)
        tip = f"{s.task}: {s.label}" + (f"\n> {op}" if op else "") + (f"\n{line2}" if line2 else "")
        out.append(
            f'<div class="{" ".join(cls)}" id="step-{s.index}" data-step="{s.index}" '
            f'data-task="{s.tid}" tabindex="0" style="grid-row:{row};grid-column:{s.tid + 2};'
            f'--hue:{_hue(s.tid)}" title="{_e(tip)}">'
            + (f'<span class="mark">{mark}</span>' if mark else "")
            + f'<span class="lbl">{_e(s.label)}</span>'
            f'<span class="obj">{f"<b class=op>{_e(op)}</b> " if op else ""}{_e(line2)}</span>'
            "</div>")
    out.append('<svg id="arrows" aria-hidden="true" width="0" height="0">'
               '<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" '
               'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
               '<path d="M0,0 L10,5 L0,10 z"></path></marker></defs>'
               '<path id="conflict-path" d="" marker-end="url(#arrowhead)"></path>'
               '<rect id="conflict-label-bg" x="0" y="0" width="0" height="0" rx="3"></rect>'
               f'<text id="conflict-label" x="0" y="0">{_e(c.get("object", ""))}</text></svg>')
    out.append("</div>")
    return "\n".join(out)


# -- verdict -----------------------------------------------------------------------------------
def _because_item(text: str) -> str:
    head, sep, rest = text.partition(":")
    if head.startswith("step ") and head[5:].isdigit() and sep:
        idx = int(head[5:])
        return f'<li><a href="#step-{idx}">step {idx}</a>:{_e(rest)}</li>'
    return f"<li>{_e(text)}</li>"


def _verdict(report) -> str:
    clean = report.verdict == "ok"
    out = [f'<section id="verdict" class="{"clean" if clean else "violation"}">',
           "<h2>Verdict</h2>", f'<p class="verdict">{_e(report.verdict)}</p>']
    if clean:
        out.append("<p>No oracle fired on this run.</p>")
    if report.objects:
        out.append('<p class="objects">objects: ' + " ".join(
            f"<code>{_e(k)}={_e(v)}</code>" for k, v in report.objects.items()) + "</p>")
    for name in report.named:
        st = report.final_state.get(name)
        if not st:
            continue
        out.append(f'<table class="final"><caption>final state of {_e(name)}</caption>'
                   + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in st.items())
                   + "</table>")
    if report.because:
        out.append("<h3>because</h3><ol class=\"because\">"
                   + "".join(_because_item(b) for b in report.because) + "</ol>")
    out.append("</section>")
    return "\n".join(out)


# -- page --------------------------------------------------------------------------------------
@functools.cache
def asset(name: str) -> str:
    """report.css, report.js or index.css, package data beside this module (inlined into
    the page)."""
    return importlib.resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_html(report) -> str:
    """The report as one self-contained HTML page (see the module docstring)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title>",
        f"<style>{asset('report.css')}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header(report),
        f'<section id="trace-lanes"><h2>Lanes: {len(report.steps)} steps, '
        f'{len(report.tasks)} tasks</h2>',
        '<p class="legend">Time runs downward, one row per step. Hover or focus a step for '
        "what it changed; <kbd>j</kbd>/<kbd>k</kbd> select the next/previous step. "
        "Hatched: the task is blocked. "
        + ("A and B: the conflicting accesses." if report.conflict else "") + "</p>",
        _lanes(report),
        "</section>",
        _verdict(report),
        "</main>",
        '<aside id="details" aria-live="polite"><div id="details-body">'
        '<h2>Step details</h2><p class="hint">Hover or focus a step (or press '
        "<kbd>j</kbd>) to see every field it changed, before \u2192 after, and its events."
        "</p></div></aside>",
        f'<script type="application/json" id="trace">{embed_json(report.to_json())}</script>',
        f"<script>{asset('report.js')}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- cowfuzz report FILE|TOKEN -o OUT.html ------------------------------------------------------
def write_report(program, variant: str, variant_cls, out_path,
                 label: str = "the program") -> int:
    """Replay ``program`` on ``variant`` (``variant_cls``, the design registered under that
    name) and write its HTML report to ``out_path`` (atomically). Returns 0 if the run is
    clean (the report is still written, titled "cowfuzz: <label> is clean on <variant>"),
    1 if it failed."""
    from fuzz.runtime.executor import execute
    from fuzz.triage.report import build_report
    from fuzz.search.store import atomic_write

    outcome = execute(program, variant_cls)
    report = build_report(program, variant, outcome)
    if not outcome.failed:
        report = dataclasses.replace(report, title=f"cowfuzz: {label} is clean on {variant}")
    atomic_write(Path(out_path), render_html(report))
    return 1 if outcome.failed else 0
