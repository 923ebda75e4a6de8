"""Triage at scale: a crash folder's findings grouped, as text and as one HTML page.

A long campaign leaves many crash folders, and one bug often shows as
several signatures: the same oracle and message met in different kernel
functions (``pmd_clear_bad`` once per function that walked into the bad
pmd). The index groups signatures by oracle and message; under each group
are its per-function signatures with their hit counts and folders. Groups
and signatures are newest first (a folder's first hit: ``meta.json``'s
``first_hit.at``, else when its signature.txt was written).

``cowfuzz crashes DIR`` prints ``render_summary``; a campaign rewrites
``crashes/<variant>/index.html`` (``render_index_html``) as its findings
come, under the crash report's rules (fuzz/triage/html_report.py): one
self-contained page, its stylesheet inlined from package data
(``index.css``), a Content-Security-Policy that forbids every load, links
to each folder's ``report.html``; the same folders give the same bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from fuzz.program.textcodec import ParseError, read_input
from fuzz.triage.html_report import CSP, asset
from fuzz.triage.signature import split_signature


@dataclass
class CrashEntry:
    signature: str
    oracle: str
    variant: str
    where: str                 # the kernel function it fired in
    what: str                  # the message, without this run's numbers
    folder: Path
    hits: int
    found_at: str              # ISO 8601, UTC
    minimized: bool
    known_from: str | None = None


@dataclass
class Group:
    oracle: str
    what: str
    entries: list[CrashEntry] = field(default_factory=list)   # newest first

    @property
    def hits(self) -> int:
        return sum(e.hits for e in self.entries)

    @property
    def newest(self) -> str:
        return max(e.found_at for e in self.entries)


def _meta(folder: Path) -> dict:
    try:
        meta = json.loads(read_input(folder / "meta.json"))
    except (OSError, ValueError, ParseError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _found_at(folder: Path, meta: dict) -> str:
    at = (meta.get("first_hit") or {}).get("at") if isinstance(meta.get("first_hit"), dict) \
        else None
    if isinstance(at, str) and at:
        return at
    try:
        mtime = os.stat(folder / "signature.txt").st_mtime
    except OSError:
        mtime = 0
    return datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds")


def read_crashes(directory) -> list[CrashEntry]:
    """Every complete crash folder below ``directory`` (one with a signature.txt)."""
    out = []
    for sig_file in sorted(Path(directory).glob("*/signature.txt")):
        folder = sig_file.parent
        if folder.name.startswith("."):
            continue
        try:
            sig = read_input(sig_file, 1 << 16).strip()
        except (OSError, ParseError):
            continue
        meta = _meta(folder)
        hits = meta.get("hits")
        oracle, variant, where, what = split_signature(sig)
        known = meta.get("known_from")
        out.append(CrashEntry(sig, oracle, variant, where, what, folder,
                              hits if isinstance(hits, int) and hits > 0 else 1,
                              _found_at(folder, meta), (folder / "repro.cow").is_file(),
                              known if isinstance(known, str) else None))
    return out


def group_crashes(entries: list[CrashEntry]) -> list[Group]:
    """Grouped by (oracle, message); newest first, then by name (deterministic)."""
    groups: dict[tuple[str, str], Group] = {}
    for e in entries:
        groups.setdefault((e.oracle, e.what), Group(e.oracle, e.what)).entries.append(e)
    for g in groups.values():
        g.entries.sort(key=lambda e: (e.found_at, e.signature), reverse=True)
    return sorted(groups.values(), key=lambda g: (g.newest, g.oracle, g.what), reverse=True)


def render_summary(entries: list[CrashEntry], directory) -> str:
    groups = group_crashes(entries)
    if not groups:
        return f"{directory}: no crashes\n"
    lines = [f"{directory}: {len(entries)} signature(s) in {len(groups)} group(s), "
             f"{sum(g.hits for g in groups):,} hit(s)", ""]
    for g in groups:
        lines.append(f"{g.oracle}: {g.what}  ({len(g.entries)} signature(s), {g.hits:,} hit(s), "
                     f"newest {g.newest})")
        for e in g.entries:
            notes = ["minimized" if e.minimized else "not minimized"]
            if e.known_from:
                notes.append(f"known from {e.known_from}")
            lines.append(f"  {e.hits:>6,}  {e.where:<32} {e.folder.name}  {e.found_at}  "
                         f"({', '.join(notes)})")
        lines.append("")
    return "\n".join(lines)


def _e(s) -> str:
    return escape(str(s), quote=True)


def render_index_html(entries: list[CrashEntry], title: str) -> str:
    groups = group_crashes(entries)
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="summary">{len(entries)} signature(s) in {len(groups)} group(s), '
            f"{sum(g.hits for g in groups):,} hit(s); newest first.</p>"]
    if not groups:
        body.append("<p>No crashes yet.</p>")
    for n, g in enumerate(groups):
        body.append(f'<section class="group" id="group-{n}"><h2><span class="oracle">'
                    f'{_e(g.oracle)}</span> {_e(g.what)}</h2>'
                    f'<p class="gmeta">{len(g.entries)} signature(s), {g.hits:,} hit(s), '
                    f"newest {_e(g.newest)}</p><table><thead><tr><th>hits</th>"
                    "<th>where</th><th>first hit</th><th>folder</th><th></th></tr></thead><tbody>")
        for e in g.entries:
            notes = "minimized" if e.minimized else "not minimized"
            if e.known_from:
                notes += f"; known from {e.known_from}"
            body.append(f'<tr><td class="hits">{e.hits:,}</td><td><code>{_e(e.where)}</code></td>'
                        f"<td>{_e(e.found_at)}</td>"
                        f'<td><a href="{_e(e.folder.name)}/report.html">{_e(e.folder.name)}</a></td>'
                        f'<td class="notes">{_e(notes)}</td></tr>')
        body.append("</tbody></table></section>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{asset('index.css')}</style>", "</head>",
        "<body><main>", *body, "</main></body>", "</html>"]) + "\n"
