"""The HTML crash report (fuzz/triage/html_report.py), three ways:

(a) parsed with html.parser: a Content-Security-Policy that forbids network loads, no
    external src/href, one .step per trace step, the report embedded as JSON;
(b) in headless Chromium (Debian's package): a screenshot that is not blank, and the
    rendered DOM (--dump-dom) has one .step per step and the conflict arrow drawn;
(c) driven through Playwright for Python on that Chromium: hovering or focusing a
    step shows its changed fields, j/k move the selection, the page requests nothing
    but its own file.

(b) and (c) skip, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from fuzz.program.replay_design import replay_design
from fuzz.runtime.executor import execute
from fuzz.triage.html_report import CSP, render_html, write_report
from fuzz.triage.report import build_report, header_rows, render_text
from fuzz.program.textcodec import parse_program, read_program
from model.variants import get_variant

ROOT = Path(__file__).resolve().parents[1]
RACE = ROOT / "corpus/cowpte-rfc2/gup-fast-marks-shared-table.cow"
META = {"first_hit": {"execution": 4240, "seconds": 12.3, "strategy": "coverage", "seed": 1},
        "hits": 3, "size_before": {"operations": 11, "threads": 4, "preemptions": 10},
        "size_after": {"operations": 2, "threads": 2, "preemptions": 2}}


def long_program_text(n: int = 66) -> str:
    """RFC v2's GUP-fast race behind ~170 steps of loads and stores by another thread,
    and a thread that blocks on an event for most of the run: a 200-step trace."""
    pad = "\n".join(f"  write {1 + i % 3}\n  read {1 + (i + 1) % 3}" for i in range(n))
    return f"""cowfuzz 1
found-on cowpte-rfc2
map 0 1 anon rw populate=write
map 1 3 anon rw
thread 0
  wait 0
  write 1
  mprotect 1 3 r
  read 2
thread 0
{pad}
  signal 0
  dontneed 1 3
thread 0
  fork 1
thread 0
  pin 0 0 ro fast longterm
schedule 0 2 0 1
"""


def report_of(program, variant="cowpte-rfc2", **kw):
    outcome = execute(program, get_variant(variant))
    return outcome, build_report(program, variant, outcome, **kw)


@pytest.fixture(scope="module")
def race():
    return report_of(read_program(RACE), meta=META)


@pytest.fixture(scope="module")
def long():
    outcome, report = report_of(parse_program(long_program_text()))
    assert len(report.steps) >= 180 and report.conflict is not None
    return outcome, report


@pytest.fixture(scope="module")
def pages(tmp_path_factory, race, long):
    d = tmp_path_factory.mktemp("html")
    out = {}
    for name, (_o, report) in (("race", race), ("long", long)):
        path = d / f"{name}.html"
        path.write_text(render_html(report), encoding="utf-8")
        out[name] = path
    return out


# -- (a) the page as parsed by html.parser ----------------------------------------------------
class Page(HTMLParser):
    """Every element (tag, attrs, the element stack above it), and the text of scripts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements, self.scripts, self.stack, self.style = [], [], [], ""
        self._script = None
        self.feed(text)
        self.close()

    VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "area", "base",
            "col", "embed", "param", "track"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a, list(self.stack)))
        if tag == "script":
            self._script = [a, ""]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), list(self.stack)))

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append(tuple(self._script))
            self._script = None
        while self.stack:
            if self.stack.pop() == tag:
                break

    def handle_data(self, data):
        if self._script is not None:
            self._script[1] += data
        if self.stack and self.stack[-1] == "style":
            self.style += data

    def with_class(self, cls):
        return [(t, a) for t, a, _ in self.elements if cls in (a.get("class") or "").split()]


def csp_directives(content: str) -> dict:
    out = {}
    for part in content.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def test_csp_forbids_network_loads(race):
    page = Page(render_html(race[1]))
    metas = [(a, stack) for t, a, stack in page.elements
             if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1
    attrs, stack = metas[0]
    assert stack == ["html", "head"]
    # it comes before any script or style
    order = [t for t, _a, _s in page.elements]
    assert order.index("meta") < order.index("style") < order.index("script")
    d = csp_directives(attrs["content"])
    assert attrs["content"] == CSP
    assert d["default-src"] == ["'none'"]
    for name, sources in d.items():
        if name in ("base-uri", "form-action"):
            assert sources == ["'none'"]
            continue
        allowed = {"'none'", "'unsafe-inline'"} | ({"data:"} if name == "img-src" else set())
        assert set(sources) <= allowed, (name, sources)
    # nothing that would fetch: no link, iframe, object, embed; no CSS import or url()
    assert not {t for t, _a, _s in page.elements} & {"link", "iframe", "object", "embed",
                                                    "frame", "audio", "video", "base"}
    assert "@import" not in page.style and "url(" not in page.style


def test_no_external_references(race, long):
    for _o, report in (race, long):
        page = Page(render_html(report))
        for tag, attrs, _ in page.elements:
            for name, value in attrs.items():
                value = value or ""
                if name in ("src", "href", "xlink:href", "action", "formaction", "poster",
                            "data", "background", "srcset", "ping", "manifest"):
                    assert value.startswith("#") or value.startswith("data:"), (tag, name, value)
                if "url(" in value:
                    assert all(u.startswith("#") for u in value.split("url(")[1:]), (tag, value)
        # the anchors that exist point at steps or sections of this page
        ids = {a["id"] for _t, a, _s in page.elements if "id" in a}
        for tag, attrs, _ in page.elements:
            if tag == "a":
                assert attrs["href"][1:] in ids


def test_one_step_element_per_trace_step(race, long):
    for outcome, report in (race, long):
        page = Page(render_html(report))
        steps = page.with_class("step")
        assert len(steps) == len(outcome.trace.steps) == len(report.steps)
        assert [a["id"] for _t, a in steps] == [f"step-{s.index}" for s in outcome.trace.steps]
        assert [int(a["data-step"]) for _t, a in steps] == [s.index for s in report.steps]
        assert all(a.get("tabindex") == "0" for _t, a in steps)
        # the conflicting pair is marked, the blocked intervals drawn in their lane
        c = report.conflict
        marked = {int(a["data-step"]) for _t, a in page.with_class("conflict")}
        assert marked == {c["first"], c["second"]}
    blocked = page.with_class("blocked")          # the long trace: T0 waits on an event
    blockers = [s for s in report.steps if any(e[0] == "block" for e in s.events)]
    assert blockers and len(blocked) >= 1
    assert {int(a["data-from"]) for _t, a in blocked} <= {s.index for s in blockers}


def test_embedded_json_is_the_report(race, long):
    for _o, report in (race, long):
        text = render_html(report)
        page = Page(text)
        data = [(a, body) for a, body in page.scripts if a.get("type") == "application/json"]
        assert len(data) == 1 and data[0][0]["id"] == "trace"
        assert "</" not in data[0][1]
        assert json.loads(data[0][1]) == json.loads(json.dumps(report.to_json()))


def test_hostile_strings_cannot_escape(race):
    """A label or variant holding markup stays text: escaped in HTML, inert in the JSON."""
    _o, report = race
    evil = '</script><script>alert(1)</script><!-- "&amp;'
    steps = [dataclasses.replace(s, label=s.label + evil) if i == 3 else s
             for i, s in enumerate(report.steps)]
    bad = dataclasses.replace(report, variant="v" + evil, steps=steps, title="BUG: " + evil)
    page = Page(render_html(bad))
    assert len(page.scripts) == 2                     # the JSON and the page's own script
    assert not any(t == "script" and "src" in a for t, a, _ in page.elements)
    (a, body), = [(a, b) for a, b in page.scripts if a.get("type") == "application/json"]
    assert "<" not in body and json.loads(body) == json.loads(json.dumps(bad.to_json()))
    assert len(page.with_class("step")) == len(report.steps)


def test_header_and_verdict(race):
    _o, report = race
    text = render_html(report)
    page = Page(text)
    assert f"<h1>{report.title}</h1>" in text
    assert f"<title>{report.title}</title>" in text
    for value in ("cowpte-rfc2", report.model_version, "execution 4,240 after 12.3 s "
                  "(coverage, seed 1)", "11 operations, 4 threads, 10 preemptions -&gt; "
                  "2 operations, 2 threads, 2 preemptions"):
        assert value in text
    assert f'<code id="replay">{report.replay}</code>' in text
    # the header is the text report's, row for row
    plain = render_text(report)
    for k, v in header_rows(report):
        assert f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" in text
        assert re.search(rf"^{re.escape(k)}:\s+{re.escape(v)}$", plain, re.M)
    assert any(t == "button" and a.get("id") == "copy-replay" for t, a, _ in page.elements)
    # lanes: a header per task, sticky
    heads = page.with_class("lh")
    assert len(heads) == len(report.tasks) + 1
    # the verdict: every because entry, with links to its steps; objects; final state
    verdict = text.split('<section id="verdict"')[1]
    assert report.verdict in verdict.replace("&gt;", ">")
    for k, v in report.objects.items():
        assert f"<code>{k}={v}</code>" in verdict
    assert "final state of t1" in verdict and "EXCLUSIVE" in verdict
    assert verdict.count("<li>") == len(report.because)
    c = report.conflict
    assert f'<a href="#step-{c["first"]}">' in verdict and f'<a href="#step-{c["second"]}">' \
        in verdict


def test_deterministic(race):
    program = read_program(RACE)
    a = render_html(report_of(program, meta=META)[1])
    b = render_html(report_of(program, meta=dict(reversed(list(META.items()))))[1])
    assert a == b == render_html(race[1])


def write(path, out, variant=None) -> int:
    """``cowfuzz report FILE -o OUT``: the design by fuzz/program/replay_design.py."""
    program = read_program(path)
    name = replay_design(program, variant)
    return write_report(program, name, get_variant(name), out, str(path))


def test_write_report(tmp_path):
    out = tmp_path / "out" / "race.html"
    assert write(RACE, out) == 1                          # found-on cowpte-rfc2
    text = out.read_text(encoding="utf-8")
    assert "<h1>BUG: cowfuzz: VM_BUG_ON in " in text
    assert write(RACE, out, variant="upstream") == 0
    text = out.read_text(encoding="utf-8")
    assert f"<h1>cowfuzz: {RACE} is clean on upstream</h1>" in text
    assert len(Page(text).with_class("step")) > 0
    assert not [p for p in out.parent.iterdir() if p.name != "race.html"]   # no temp left
    # the variant: explicit, else found-on, else the first expect line, else upstream
    body = RACE.read_text().replace("found-on cowpte-rfc2\n", "")
    body = body.replace("expect cowpte-rfc2 VM_BUG_ON\n", "")
    first = tmp_path / "first-expect.cow"
    first.write_text(body.replace("cowfuzz 1\n", "cowfuzz 1\nexpect cowpte-rfc2 VM_BUG_ON\n"))
    assert replay_design(read_program(first)) == "cowpte-rfc2"
    assert write(first, tmp_path / "f.html") == 1
    none = tmp_path / "none.cow"
    none.write_text("\n".join(x for x in body.splitlines() if not x.startswith("expect")))
    assert replay_design(read_program(none)) == "upstream"
    assert replay_design(read_program(none), "dirty-cow") == "dirty-cow"
    assert write(none, tmp_path / "n.html") == 0
    assert "is clean on upstream" in (tmp_path / "n.html").read_text()


def test_css_and_js_are_package_data_inlined_in_the_page(race):
    """report.css and report.js ship with the package (pyproject's package-data) and end
    up inline: the page still loads nothing."""
    import tomllib
    from importlib.resources import files
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(data["package-data"]["fuzz.triage"]) >= {"report.css", "report.js"}
    text = render_html(race[1])
    for name in ("report.css", "report.js"):
        asset = files("fuzz.triage").joinpath(name).read_text(encoding="utf-8")
        assert asset.strip() and asset in text
    page = Page(text)
    assert files("fuzz.triage").joinpath("report.css").read_text(encoding="utf-8") \
        in page.style


# -- (b) headless Chromium ---------------------------------------------------------------------
def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = find_chromium()
NO_CHROMIUM = ("no Chromium found (chromium, chromium-browser, /usr/bin/chromium); "
               "apt-get install chromium")
#: no network, no background services, no first-run UI; an empty profile is added per run
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


def test_screenshot_is_not_blank(tmp_path, pages):
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1000,700", "--hide-scrollbars",
             f"--screenshot={shot}", pages["long"].as_uri())
    with Image.open(shot) as image:
        assert image.size == (1000, 700)
        counts = image.convert("RGB").getcolors(maxcolors=1000 * 700)
    assert len(counts) > 10, "the screenshot is blank"
    assert max(n for n, _rgb in counts) < 0.95 * 1000 * 700
    # the title's dark red is there: the page rendered, not an error page
    assert any(r > 120 and g < 60 and b < 60 for _n, (r, g, b) in counts)


class Dom(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.steps, self.path_d = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "step" in (a.get("class") or "").split():
            self.steps.append(a.get("id"))
        if a.get("id") == "conflict-path":
            self.path_d = a.get("d")


@pytest.mark.slow
def test_dump_dom_has_every_step(tmp_path, pages, race, long):
    for name, (_o, report) in (("race", race), ("long", long)):
        proc = chromium(tmp_path, "--dump-dom", pages[name].as_uri())
        dom = Dom(proc.stdout.decode())
        assert dom.steps == [f"step-{s.index}" for s in report.steps]
        # the script ran and drew the arrow between the conflicting pair
        assert dom.path_d and dom.path_d.startswith("M"), dom.path_d


# -- (c) driven through Playwright ---------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as p:
        # Playwright makes its own empty profile; no browser download, Debian's Chromium
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[f for f in FLAGS if f != "--headless"])
        try:
            yield b
        finally:
            b.close()


def open_page(browser, path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    return page, requests, errors


def details(page) -> str:
    return page.inner_text("#details")


@pytest.mark.slow
def test_hover_and_focus_show_details(browser, pages, race):
    _o, report = race
    page, requests, errors = open_page(browser, pages["race"])
    try:
        c = report.conflict
        second = report.steps[c["second"]]
        page.hover(f"#step-{second.index}")
        text = details(page)
        assert f"step {second.index}" in text
        assert second.changes, "the conflicting step changed something"
        for obj, field, before, after in second.changes:
            assert f"{obj}.{field}" in text and after in text
        # focus (the keyboard's way in) selects, shows and links the step
        first = report.steps[c["first"]]
        page.focus(f"#step-{first.index}")
        text = details(page)
        for obj, field, _b, _a in first.changes:
            assert f"{obj}.{field}" in text
        assert page.evaluate("location.hash") == f"#step-{first.index}"
        # a step that only blocked or returned shows its events
        ev = next(s for s in report.steps if any(e[0] == "ret" for e in s.events))
        page.hover(f"#step-{ev.index}")
        assert f"{ev.task} < " in details(page)
        assert not errors
        assert requests == [pages["race"].as_uri()]
    finally:
        page.close()


@pytest.mark.slow
def test_j_and_k_move_the_selection(browser, pages, long):
    _o, report = long
    page, requests, errors = open_page(browser, pages["long"])
    try:
        page.focus("#step-0")
        page.keyboard.press("j")
        page.keyboard.press("j")
        assert page.evaluate("document.activeElement.id") == "step-2"
        assert page.evaluate("location.hash") == "#step-2"
        assert page.get_attribute("#details-body", "data-step") == "2"
        for obj, field, _b, _a in report.steps[2].changes:
            assert f"{obj}.{field}" in details(page)
        page.keyboard.press("k")
        assert page.evaluate("document.activeElement.id") == "step-1"
        assert page.evaluate("location.hash") == "#step-1"
        # j all the way down scrolls the selection into view, below the sticky headers
        last = report.steps[-1].index
        for _ in range(len(report.steps)):
            page.keyboard.press("j")
        assert page.evaluate("document.activeElement.id") == f"step-{last}"
        box = page.eval_on_selector(f"#step-{last}", "e => e.getBoundingClientRect().toJSON()")
        head = page.eval_on_selector(".lh", "e => e.getBoundingClientRect().toJSON()")
        assert head["top"] == 0 and box["top"] >= head["bottom"] and box["bottom"] <= 900
        assert not errors
        assert requests == [pages["long"].as_uri()]
    finally:
        page.close()


def test_conflict_arrow_and_copy_button(browser, pages, long):
    _o, report = long
    page, requests, errors = open_page(browser, pages["long"])
    try:
        c = report.conflict
        a = page.eval_on_selector(f"#step-{c['first']}", "e => e.getBoundingClientRect().toJSON()")
        b = page.eval_on_selector(f"#step-{c['second']}",
                                  "e => e.getBoundingClientRect().toJSON()")
        arrow = page.eval_on_selector("#conflict-path", "e => e.getBoundingClientRect().toJSON()")
        # the arrow spans from the middle of A to the middle of B
        assert abs(arrow["top"] - (a["top"] + a["height"] / 2)) < 4
        assert abs(arrow["bottom"] - (b["top"] + b["height"] / 2)) < 4
        assert page.text_content("#conflict-label") == c["object"]
        page.click("#copy-replay")
        page.wait_for_function("() => document.getElementById('copy-replay').textContent != 'copy'")
        label = page.inner_text("#copy-replay")
        assert label in ("copied", "selected: press Ctrl+C")
        if label != "copied":
            assert page.evaluate("getSelection().toString()") == report.replay
        assert not errors
        assert requests == [pages["long"].as_uri()]
    finally:
        page.close()
