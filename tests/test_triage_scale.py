"""Triage at scale: the crash index (text and HTML), known signatures, --fail-on new, and
a campaign whose counters, coverage and plot go on across a resume."""

from __future__ import annotations

import csv
import json
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.program.textcodec import read_program
from fuzz.runtime.executor import execute
from fuzz.search.campaign import CampaignStats
from fuzz.search.progress import status_text
from fuzz.triage.crash_index import group_crashes, read_crashes, render_index_html
from fuzz.triage.html_report import CSP
from fuzz.triage.known import known_signatures
from fuzz.triage.signature import signature
from model.variants import get_variant, load_design
from tests.fuzzing import PLANTED, Fuzzing, fuzz_args

ROOT = Path(__file__).resolve().parents[1]
PLANTED_NAME = load_design(PLANTED).name


def crash_folder(root: Path, name: str, sig: str, hits: int, at: str | None, **extra) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "signature.txt").write_text(sig + "\n")
    meta = {"signature": sig, "hits": hits, **extra}
    if at is not None:
        meta["first_hit"] = {"execution": 1, "seconds": 1.0, "at": at}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


BAD_PMD = "VM_BUG_ON:cowpte-rfc2:{}:pmd_clear_bad: bad pmd tN in mmN at va N (cleared)"


def three_crashes(root: Path) -> None:
    crash_folder(root, "VM_BUG_ON-1", BAD_PMD.format("zap_pte_range"), 5, "2026-01-01T10:00:00+00:00")
    crash_folder(root, "VM_BUG_ON-2", BAD_PMD.format("handle_pte_fault"), 2,
                 "2026-01-01T12:00:00+00:00")
    crash_folder(root, "writable-shared-1",
                 "writable-shared:cowpte-rfc2:copy_pte_range:<script>alert(1)</script>", 1,
                 "2026-01-01T11:00:00+00:00", known_from="corpus/x.cow")
    (root / "plot_data.csv").write_text("seconds\n")


def test_crashes_are_grouped_by_oracle_and_message_newest_first(tmp_path, capsys):
    three_crashes(tmp_path)
    groups = group_crashes(read_crashes(tmp_path))
    assert [(g.oracle, len(g.entries), g.hits) for g in groups] == \
        [("VM_BUG_ON", 2, 7), ("writable-shared", 1, 1)]
    assert [e.where for e in groups[0].entries] == ["handle_pte_fault", "zap_pte_range"]
    assert main(["crashes", str(tmp_path), "--html", str(tmp_path / "out.html")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{tmp_path}: 3 signature(s) in 2 group(s), 8 hit(s)"
    lines = out.splitlines()
    head = lines.index("VM_BUG_ON: pmd_clear_bad: bad pmd tN in mmN at va N (cleared)  "
                       "(2 signature(s), 7 hit(s), newest 2026-01-01T12:00:00+00:00)")
    assert "handle_pte_fault" in lines[head + 1] and "zap_pte_range" in lines[head + 2]
    assert "known from corpus/x.cow" in out
    assert (tmp_path / "out.html").read_text() == \
        render_index_html(read_crashes(tmp_path), f"crashes in {tmp_path}")
    assert main(["crashes", str(tmp_path / "nope")]) == 2


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.csp = None
        self.loads = []          # anything that would load from elsewhere
        self.links = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content")
        if tag == "script":
            self.scripts += 1
        if a.get("src") or (tag == "link"):
            self.loads.append((tag, a))
        if tag == "a":
            self.links.append(a.get("href"))


def test_the_index_page_is_self_contained(tmp_path):
    three_crashes(tmp_path)
    html = render_index_html(read_crashes(tmp_path), "crashes of <cowpte-rfc2>")
    page = _Page()
    page.feed(html)
    assert page.csp == CSP and page.loads == [] and page.scripts == 0
    assert page.links == ["VM_BUG_ON-2/report.html", "VM_BUG_ON-1/report.html",
                          "writable-shared-1/report.html"]
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<style>" in html and "td.hits" in html           # the package's index.css
    assert html == render_index_html(read_crashes(tmp_path), "crashes of <cowpte-rfc2>")


def test_known_signatures_come_from_crash_folders_and_expect_lines(tmp_path):
    three_crashes(tmp_path / "crashes")
    known = known_signatures([tmp_path / "crashes", ROOT / "corpus" / "cowpte-rfc2"],
                             "cowpte-rfc2", get_variant("cowpte-rfc2"))
    assert known[BAD_PMD.format("zap_pte_range")] == str(tmp_path / "crashes" / "VM_BUG_ON-1")
    from_corpus = {k: v for k, v in known.items() if v.endswith(".cow")}
    assert len(from_corpus) >= 3
    race = read_program(ROOT / "corpus" / "cowpte-rfc2" / "gup-fast-marks-shared-table.cow")
    rfc2 = get_variant("cowpte-rfc2")
    assert signature(execute(race, rfc2), "cowpte-rfc2") in known     # (a crash folder's too)
    # a file whose expect line for this design is clean adds nothing
    assert not known_signatures([ROOT / "corpus" / "upstream"], "upstream", get_variant("upstream"))


def test_the_status_line_says_replaying_instead_of_coverage():
    stats = CampaignStats(time.monotonic(), runs=10, before_seconds=100.0, before_runs=90,
                          lines=0, replaying=(420, 1100))
    text = status_text(stats)
    assert "replaying corpus 420/1,100" in text and "cov " not in text
    assert "runs 100 " in text and text.startswith("0:01:40")


def _plot_rows(folder: Path) -> list[dict]:
    with open(folder / "crashes" / "plot_data.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_counters_coverage_and_the_plot_go_on_across_a_resume(tmp_path):
    args = fuzz_args(tmp_path, "--variant", "upstream", "--strategy", "random", "--seed", 1,
                     "--time", 6, "--slice", 1)
    first = Fuzzing(tmp_path, *args)
    assert first.finish() == 0, first.stderr
    rows1 = _plot_rows(tmp_path)
    state1 = json.loads((tmp_path / "campaign" / "state.json").read_text())
    again = Fuzzing(tmp_path, *args[:-6], "--seed", 2, "--time", 6, "--slice", 1)
    assert again.finish() == 0, again.stderr
    assert f"resuming the campaign at 0:00:0{int(state1['seconds'])}, " \
           f"{state1['runs']:,} runs" in again.stderr
    rows = _plot_rows(tmp_path)
    for column in ("seconds", "executions", "lines", "features"):
        values = [float(r[column]) for r in rows]
        assert values == sorted(values), (column, values)        # no saw-tooth
    assert float(rows[len(rows1)]["seconds"]) > float(rows1[-1]["seconds"])
    state2 = json.loads((tmp_path / "campaign" / "state.json").read_text())
    assert state2["runs"] > state1["runs"] and state2["seconds"] > state1["seconds"] + 4
    done = again.out[-1]
    # state.json keeps the seconds to a tenth (11.96 is 12.0), the DONE line's clock cuts
    # them to whole seconds (0:00:11)
    clocks = {f"0:00:{int(state2['seconds'] - cut):02d}" for cut in (0, 0.05)}
    assert any(done.startswith(f"cowfuzz: DONE {clock}  runs {state2['runs']:,} ")
               for clock in clocks), (done, state2)


@pytest.mark.slow
def test_a_resumed_campaign_finding_only_known_crashes_passes_fail_on_new(tmp_path):
    base = ("--variant", PLANTED, "--strategy", "random", "--slice", 1, "--minimize-time", 10)
    first = Fuzzing(tmp_path, *fuzz_args(tmp_path, *base, "--seed", 1, "--time", 90,
                                         "--stop-on-crash", "--fail-on", "new"))
    assert first.finish() == 1, first.stderr                     # a new crash
    (crash,) = [p for p in (tmp_path / "crashes").iterdir() if p.is_dir()]
    # the reproducer joins the seeds: each resumed run replays it and finds the bug again
    (tmp_path / "corpus").mkdir(exist_ok=True)
    shutil.copy(crash / "input.cow", tmp_path / "corpus" / "found.cow")
    again = Fuzzing(tmp_path, *fuzz_args(tmp_path, *base, "--seed", 2, "--time", 5,
                                         "--fail-on", "new"))
    assert again.finish() == 0, again.stderr                     # found, but known
    done = again.out[-1]
    assert "violations 1 unique/" in done and " new" not in done
    hits = json.loads((tmp_path / "campaign" / "state.json").read_text())["hits"]
    assert list(hits.values()) == [2] or sum(hits.values()) >= 2
    anyway = Fuzzing(tmp_path, *fuzz_args(tmp_path, *base, "--seed", 3, "--time", 4))
    assert anyway.finish() == 1, anyway.stderr                   # --fail-on any: still 1
    assert [p for p in (tmp_path / "crashes").iterdir() if p.is_dir()] == [crash]
