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

The page loads nothing: all CSS and JavaScript are inline, no font, image or
library from elsewhere, and a Content-Security-Policy meta tag forbids every
network load. The report itself is embedded as JSON (``<script
type="application/json" id="trace">``, ``report.to_json()`` with ``<``, ``>``
and ``&`` escaped so it cannot close its script tag); the script reads the
step details from it. The output is deterministic: the same report gives the
same bytes.

``write_report(path_in, out_path, variant=None)`` is ``cowfuzz report FILE -o
OUT.html``: replay a .cow file and write its report.
"""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path

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
def _size(d: dict) -> str:
    return f"{d['operations']} ops/{d['threads']} threads/{d['preemptions']} preemptions"


def _header_rows(report) -> list[tuple[str, str]]:
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
        rows.append(("size", f"{_size(meta['size_before'])} -> {_size(meta['size_after'])}"))
    return rows


def _changes_text(changes) -> str:
    return "; ".join(f"{n}.{f} {a} \u2192 {b}" for n, f, a, b in changes)


def _header(report) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _header_rows(report))
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
_CSS = """
:root{--panel:27em;--row:32px;font:13px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;
 color:#1d2330;background:#fff}
*{box-sizing:border-box}
body{margin:0}
main{margin-right:var(--panel);padding:0 1em 2em 1em;min-width:0}
code,.lanes,.mono,#details{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
h1{font-size:1.25em;margin:.8em 0 .5em;color:#a1131a;word-break:break-word}
h2{font-size:1.05em;margin:1.2em 0 .4em}
h3{font-size:.95em;margin:.9em 0 .3em}
a{color:#1550b8}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:0}
dl.meta dt{color:#5a6475}
dl.meta dd{margin:0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
dd.replay code{background:#f2f4f8;padding:.1em .3em;border-radius:3px}
#copy-replay{font:inherit;font-size:.85em;margin-left:.4em;padding:.05em .6em;cursor:pointer}
#conflict ul{margin:.2em 0;padding-left:1.2em;list-style:none}
#conflict li{margin:.15em 0}
.badge{display:inline-block;font-weight:700;font-size:.8em;color:#fff;border-radius:3px;
 padding:0 .35em;margin-right:.3em;background:#c0262d}
.badge.a{background:#d9730d}
.legend{color:#5a6475;margin:.2em 0 .5em}
.legend kbd{border:1px solid #b8bfcc;border-radius:3px;padding:0 .3em;background:#f6f7f9}
.lanes{position:relative;display:grid;font-size:11px;line-height:1.15;
 grid-template-columns:3.6em repeat(var(--lanes),minmax(11em,1fr));grid-auto-rows:var(--row);
 column-gap:3px;border-top:1px solid #d5d9e0}
.lh{position:sticky;top:0;z-index:6;grid-row:1;background:#eef1f6;border-bottom:2px solid
 hsl(var(--hue,220) 45% 55%);font-weight:700;padding:.45em .4em;white-space:nowrap;
 overflow:hidden;text-overflow:ellipsis}
.lh.gutter{grid-column:1;color:#5a6475;font-weight:400;border-bottom-color:#9aa3b2}
.band{grid-column:1 / -1;background:#f6f7fa;z-index:0}
.life{justify-self:center;width:2px;background:hsl(var(--hue) 30% 80%);z-index:1}
.blocked{z-index:1;margin:0 12%;border:1px dashed #8a93a3;border-radius:3px;
 background:repeating-linear-gradient(135deg,#c9ced8 0 3px,#f3f4f7 3px 7px);overflow:hidden}
.blocked span{display:inline-block;background:#fff;color:#4b5466;font-style:italic;
 padding:0 .3em;margin:.2em;border-radius:2px;white-space:nowrap}
.idx{grid-column:1;z-index:2;color:#7a8394;text-decoration:none;text-align:right;
 padding:.85em .4em 0 0;white-space:nowrap}
.idx.marked{color:#c0262d;font-weight:700}
.step{position:relative;z-index:3;margin:1px 0;padding:1px .35em;overflow:hidden;
 background:#fff;border:1px solid #ccd2dc;border-left:4px solid hsl(var(--hue) 50% 52%);
 border-radius:3px;cursor:pointer;scroll-margin-top:3.5em;scroll-margin-bottom:1em;
 display:flex;flex-direction:column;justify-content:center;outline:none}
.step span{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.step .lbl{font-weight:600;color:#1d2330}
.step .obj{color:#5a6475}
.step .op{font-weight:600;color:#1a6b3a}
.step .mark{position:absolute;right:.25em;top:.1em;font-weight:700;color:#c0262d}
.step.blocks{border-bottom:2px dashed #8a93a3}
.step.stated .lbl::after{content:" \\25CF";color:#8a4fc2;font-size:.8em}
.step:hover{border-color:#6a7fa8;background:#f4f7ff}
.step.conflict{padding-right:1.5em;border-color:#c0262d;background:#fff1f1;
 box-shadow:0 0 0 1px #c0262d}
.step.conflict-a{border-color:#d9730d;box-shadow:0 0 0 1px #d9730d;background:#fff6ec}
.step.selected,.step:focus-visible,.step:target{box-shadow:0 0 0 2px #1550b8;
 border-color:#1550b8;background:#eaf1ff}
#arrows{position:absolute;left:0;top:0;z-index:5;pointer-events:none;overflow:visible}
#conflict-path{fill:none;stroke:#c0262d;stroke-width:2;stroke-dasharray:5 3}
#arrowhead path{fill:#c0262d}
#conflict-label{font:700 11px ui-monospace,"DejaVu Sans Mono",monospace;fill:#c0262d}
#conflict-label-bg{fill:#fff;stroke:#c0262d;stroke-width:1}
#verdict{margin-top:1.5em;border-top:2px solid #c0262d;padding-top:.2em}
#verdict.clean{border-top-color:#2f8f4e}
#verdict .verdict{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-weight:700;
 color:#a1131a;word-break:break-word}
#verdict.clean .verdict{color:#2f8f4e}
table.final{border-collapse:collapse;margin:.5em 0;font-family:ui-monospace,monospace}
table.final caption{text-align:left;font-weight:600;padding:.2em 0}
table.final th,table.final td{border:1px solid #d5d9e0;padding:.1em .5em;text-align:left}
table.final th{background:#f6f7fa;font-weight:400;color:#5a6475}
ol.because{font-family:ui-monospace,"DejaVu Sans Mono",monospace;padding-left:2em}
ol.because li{margin:.15em 0;word-break:break-word}
#details{position:fixed;top:0;right:0;bottom:0;width:var(--panel);overflow:auto;
 border-left:1px solid #d5d9e0;background:#fbfcfd;padding:.6em .9em;font-size:12px;z-index:10}
#details h2{margin-top:.2em;font-family:system-ui,sans-serif}
#details .hint{color:#5a6475;font-family:system-ui,sans-serif}
#details dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em .8em;margin:.3em 0}
#details dt{color:#5a6475}
#details dd{margin:0;word-break:break-all}
#details table{border-collapse:collapse;width:100%}
#details td{border-bottom:1px solid #e3e6eb;padding:.12em .3em;vertical-align:top;
 word-break:break-all}
#details td.arrow{color:#7a8394;width:1em}
#details td.after{font-weight:600}
#details ul{margin:.2em 0;padding-left:1.2em}
@media (max-width:900px){main{margin-right:0}#details{position:static;width:auto;
 border-left:0;border-top:1px solid #d5d9e0}}
"""

_JS = r"""
(function () {
  "use strict";
  var R = JSON.parse(document.getElementById("trace").textContent);
  var byIndex = {};
  R.steps.forEach(function (s) { byIndex[s.index] = s; });
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#lanes .step"));
  var panel = document.getElementById("details-body");
  var selected = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function eventText(task, e) {
    var k = e[0];
    if (k === "op") return task + " > " + e.slice(1).join(" ");
    if (k === "ret") return task + " < " + e[1] + " = " + e[2];
    if (k === "block") return task + " blocks on " + e[1];
    if (k === "inject") return task + " fault injected: " + e[1] + " fails";
    if (k === "done") return task + " exits";
    return task + " " + e.join(" ");
  }
  function show(idx) {
    var s = byIndex[idx];
    if (!s) return;
    panel.textContent = "";
    var h = el("h2", null, "step " + s.index + " \u00b7 " + s.task);
    panel.appendChild(h);
    var dl = el("dl");
    [["label", s.label], ["objects", s.objects || "-"], ["result", s.result || "-"]]
      .forEach(function (kv) {
        dl.appendChild(el("dt", null, kv[0]));
        dl.appendChild(el("dd", null, kv[1]));
      });
    if (R.conflict && (R.conflict.first === s.index || R.conflict.second === s.index)) {
      var role = R.conflict.second === s.index ? "B, the access the oracle follows from"
                                               : "A, the previous access";
      dl.appendChild(el("dt", null, "conflict"));
      dl.appendChild(el("dd", null, "access " + role + " (" + R.conflict.object + ")"));
    }
    panel.appendChild(dl);
    panel.appendChild(el("h3", null, "changes (" + s.changes.length + ")"));
    if (s.changes.length) {
      var t = el("table", "changes");
      s.changes.forEach(function (c) {
        var tr = el("tr");
        tr.appendChild(el("td", "field", c[0] + "." + c[1]));
        tr.appendChild(el("td", "before", c[2]));
        tr.appendChild(el("td", "arrow", "\u2192"));
        tr.appendChild(el("td", "after", c[3]));
        t.appendChild(tr);
      });
      panel.appendChild(t);
    } else {
      panel.appendChild(el("p", "hint", "no state changed"));
    }
    if (s.events.length) {
      panel.appendChild(el("h3", null, "events"));
      var ul = el("ul", "events");
      s.events.forEach(function (e) { ul.appendChild(el("li", null, eventText(s.task, e))); });
      panel.appendChild(ul);
    }
    if (s.state && s.state.length) {
      panel.appendChild(el("h3", null, "state after"));
      var us = el("ul", "state");
      s.state.forEach(function (line) { us.appendChild(el("li", null, line)); });
      panel.appendChild(us);
    }
    panel.setAttribute("data-step", String(s.index));
  }
  function select(box) {
    if (selected && selected !== box) selected.classList.remove("selected");
    selected = box;
    box.classList.add("selected");
    show(+box.getAttribute("data-step"));
    var hash = "#" + box.id;
    if (location.hash !== hash) {
      try { history.replaceState(null, "", hash); } catch (err) { location.hash = hash; }
    }
  }
  boxes.forEach(function (b) {
    b.addEventListener("mouseenter", function () { show(+b.getAttribute("data-step")); });
    b.addEventListener("mouseleave", function () {
      if (selected) show(+selected.getAttribute("data-step"));
    });
    b.addEventListener("focus", function () { select(b); });
    b.addEventListener("click", function () { b.focus(); });
  });
  function move(delta) {
    if (!boxes.length) return;
    var i = selected ? boxes.indexOf(selected) : (delta > 0 ? -1 : boxes.length);
    i = Math.max(0, Math.min(boxes.length - 1, i + delta));
    var b = boxes[i];
    b.focus({ preventScroll: true });
    if (selected !== b) select(b);
    b.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (e.key === "j") { move(1); e.preventDefault(); }
    else if (e.key === "k") { move(-1); e.preventDefault(); }
  });
  document.querySelectorAll('a[href^="#step-"]').forEach(function (a) {
    a.addEventListener("click", function (e) {
      var b = document.getElementById(a.getAttribute("href").slice(1));
      if (!b) return;
      e.preventDefault();
      b.focus({ preventScroll: true });
      b.scrollIntoView({ block: "center" });
    });
  });

  // the conflicting pair: an arrow from A to B labelled with the shared object
  function drawArrow() {
    var svg = document.getElementById("arrows");
    var lanes = document.getElementById("lanes");
    if (!svg || !lanes || !R.conflict) return;
    var a = document.getElementById("step-" + R.conflict.first);
    var b = document.getElementById("step-" + R.conflict.second);
    if (!a || !b || a === b) return;
    svg.setAttribute("width", lanes.scrollWidth);
    svg.setAttribute("height", lanes.scrollHeight);
    var ax = a.offsetLeft, ay = a.offsetTop + a.offsetHeight / 2;
    var bx = b.offsetLeft, by = b.offsetTop + b.offsetHeight / 2;
    var x1, x2, c1, c2, d;
    if (a.offsetLeft === b.offsetLeft) {            // same lane: bulge out to the right
      x1 = ax + a.offsetWidth; x2 = bx + b.offsetWidth;
      var out = Math.min(60, Math.max(24, (by - ay) / 4));
      d = "M" + x1 + "," + ay + " C" + (x1 + out) + "," + ay + " " +
          (x2 + out) + "," + by + " " + x2 + "," + by;
    } else {
      var right = bx > ax;
      x1 = right ? ax + a.offsetWidth : ax;
      x2 = right ? bx : bx + b.offsetWidth;
      var k = (right ? 1 : -1) * Math.max(30, Math.abs(x2 - x1) / 2);
      c1 = (x1 + k) + "," + ay; c2 = (x2 - k) + "," + by;
      d = "M" + x1 + "," + ay + " C" + c1 + " " + c2 + " " + x2 + "," + by;
    }
    var path = document.getElementById("conflict-path");
    path.setAttribute("d", d);
    var label = document.getElementById("conflict-label");
    var bg = document.getElementById("conflict-label-bg");
    var mid = path.getPointAtLength(path.getTotalLength() / 2);
    label.setAttribute("x", mid.x);
    label.setAttribute("y", mid.y + 4);
    var bb = label.getBBox();
    // beside the curve, on A's side (B's lane is usually busy up to B)
    var lx = bx >= ax ? mid.x - bb.width - 8 : mid.x + 8;
    label.setAttribute("x", lx);
    bb = label.getBBox();
    bg.setAttribute("x", bb.x - 3); bg.setAttribute("y", bb.y - 1);
    bg.setAttribute("width", bb.width + 6); bg.setAttribute("height", bb.height + 2);
  }
  drawArrow();
  window.addEventListener("resize", drawArrow);
  window.addEventListener("load", drawArrow);

  // the replay command: copy it, or select it where the clipboard is not available
  var btn = document.getElementById("copy-replay"), code = document.getElementById("replay");
  if (btn && code) {
    btn.addEventListener("click", function () {
      var text = code.textContent;
      function done(msg) {
        btn.textContent = msg;
        setTimeout(function () { btn.textContent = "copy"; }, 2000);
      }
      function fallback() {
        var r = document.createRange();
        r.selectNodeContents(code);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
        done(ok ? "copied" : "selected: press Ctrl+C");
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done("copied"); }, fallback);
      } else {
        fallback();
      }
    });
  }

  // a link to #step-N selects that step
  var m = /^#step-(\d+)$/.exec(location.hash);
  if (m) {
    var b0 = document.getElementById("step-" + m[1]);
    if (b0) { b0.focus({ preventScroll: true }); b0.scrollIntoView({ block: "center" }); }
  }
})();
"""


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
        f"<style>{_CSS}</style>",
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
        f"<script>{_JS}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- cowfuzz report FILE -o OUT.html -------------------------------------------------------------
def pick_variant(program, variant: str | None = None) -> str:
    """The variant to replay ``program`` on: the one given, else the one it was found on,
    else its first expect line's, else upstream."""
    if variant:
        return variant
    if program.found_on:
        return program.found_on
    if program.expect:
        return program.expect[0][0]
    return "upstream"


def write_report(path_in, out_path, variant: str | None = None) -> int:
    """Replay the .cow file ``path_in`` and write its HTML report to ``out_path``
    (atomically). Returns 0 if the run is clean (the report is still written, titled
    "cowfuzz: <file> is clean on <variant>"), 1 if it failed."""
    from fuzz.runtime.executor import execute
    from fuzz.triage.report import build_report
    from fuzz.search.store import atomic_write
    from fuzz.program.textcodec import read_program
    from model.variants import get_variant

    program = read_program(path_in)
    name = pick_variant(program, variant)
    outcome = execute(program, get_variant(name))
    report = build_report(program, name, outcome)
    if not outcome.failed:
        report = dataclasses.replace(report, title=f"cowfuzz: {path_in} is clean on {name}")
    atomic_write(Path(out_path), render_html(report))
    return 1 if outcome.failed else 0
