"""The bug benchmark: what it plans, how it summarizes, and one small real run."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

from fuzz.bench.bugs import SMALL_REPRODUCER, markdown, plan, reproducer_size, summarize
from fuzz.bench.depth import executions_to_find
from fuzz.bench.trials import SLICE_RUNS, _HuntSession, run_trial
from fuzz.program.textcodec import parse_program
from fuzz.runtime.executor import execute
from fuzz.search.session import Found
from model.variants import base_design, get_variant

ROOT = Path(__file__).resolve().parents[1]


def test_plan_runs_exhaustive_only_on_small_reproducers_and_clean_variants_once():
    corpus = ROOT / "corpus"
    jobs = plan(["upstream", "reuse-mapcount", "cowpte-v4"], ["random", "exhaustive"], 3, 9.0,
                corpus)
    by = {}
    for variant, strategy, seed, budget, target in jobs:
        assert budget == 9.0
        by.setdefault((variant, strategy), []).append((seed, target))
    assert by[("upstream", "random")] == [(1, None)]
    assert by[("upstream", "exhaustive")] == [(1, None)]
    assert by[("reuse-mapcount", "random")] == [(s, "writable-shared") for s in (1, 2, 3)]
    assert [s for s, _ in by[("cowpte-v4", "random")]] == [1, 2, 3]
    for variant in ("reuse-mapcount", "cowpte-v4"):
        small = reproducer_size(variant, corpus) <= SMALL_REPRODUCER
        assert ((variant, "exhaustive") in by) == small


def test_summary_counts_a_miss_as_the_budget():
    def trial(seed, found, runs, seconds):
        return {"variant": "dirty-cow", "strategy": "pct", "seed": seed, "budget": 60.0,
                "target": "writable-shared", "found": found, "runs": runs,
                "seconds": seconds, "signature": "s" if found else None}
    trials = [trial(1, True, 100, 1.0), trial(2, True, 300, 3.0), trial(3, False, 9000, 60.0)]
    [row] = summarize(trials, 60.0)
    assert row["found"] == 2 and row["trials"] == 3
    assert row["median_runs"] == 300 and row["p90_runs"] == float("inf")
    table = markdown([row], 60.0, "cowfuzz bench")
    assert "| dirty-cow | writable-shared | pct | 2/3 | 300 | - | 3.0 | >60s |" in table
    # no execution count reads as seconds
    execs = [line.split(" | ")[4:6] for line in table.splitlines() if line.startswith("| dirty")]
    assert execs and not any("s" in cell for row in execs for cell in row)


@pytest.mark.slow
def test_a_small_benchmark_run_writes_strict_json_markdown_and_a_plot(tmp_path):
    out = {name: tmp_path / name for name in ("b.json", "b.md", "b.png")}
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz.cli", "bench", "--variants", "reuse-mapcount", "upstream",
         "--strategies", "random", "--trials", "2", "--budget", "10", "--jobs", "2",
         "--json", out["b.json"], "--markdown", out["b.md"], "--plot", out["b.png"]],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr     # the pool's workers end quietly
    data = json.loads(out["b.json"].read_text(),
                      parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    trials = {(t["variant"], t["seed"]): t for t in data["trials"]}
    assert set(trials) == {("reuse-mapcount", 1), ("reuse-mapcount", 2), ("upstream", 1)}
    # random seed 1 reaches the vmsplice reuse within about a thousand executions
    hit = trials[("reuse-mapcount", 1)]
    assert hit["found"] and hit["runs"] < 2000
    assert hit["signature"].startswith("writable-shared:reuse-mapcount:")
    clean = trials[("upstream", 1)]
    assert not clean["found"] and clean["signature"] is None and clean["runs"] > 0
    table = out["b.md"].read_text()
    assert "| reuse-mapcount | writable-shared | random |" in table
    assert "| upstream | random |" in table and table in proc.stdout
    assert out["b.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_windows_counts_the_inputs_that_reach_a_designs_points(capsys):
    from fuzz.bench.windows import main
    assert main(["--variant", "cowpte-relaxed", str(ROOT / "corpus" / "cowpte-relaxed"),
                 "--match", "copy_cow_pte_range:ptep_get"]) == 0
    lines = capsys.readouterr().out.splitlines()
    replayed = int(lines[0].split()[0])
    assert replayed >= 1
    [row] = lines[2:]
    inputs, steps, label = row.split()
    assert label == "copy_cow_pte_range:ptep_get" and 1 <= int(inputs) <= replayed <= int(steps)
    assert main(["--variant", "upstream", str(ROOT / "corpus" / "cowpte-relaxed"),
                 "--match", "copy_cow_pte_range"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == []


#: two /proc/pid/mem writes to a private read-only file page: on page_count-based COW
#: (reuse-refcount, and clear-refs-read-lock, which is put into it) the second one's write
#: fault copies the page the first one is writing through its GUP reference
TWO_PROCMEM_WRITES = """cowfuzz 1
map 9 1 file r pgoff=3 populate=read
thread 0
  procmem 0 9
thread 0
  procmem 0 9
schedule 1 0 0 1 0 0 0 0 0 0 0 0 1 0 0 0 1
"""


def test_a_hunt_credits_a_variant_only_with_what_its_base_design_does_not_show():
    """clear-refs-read-lock's base, reuse-refcount, loses a write too: a benchmark trial
    that found that lost write has not found clear_refs' bug, and hunts on."""
    cls = get_variant("clear-refs-read-lock")
    assert base_design(cls) is get_variant("reuse-refcount")
    assert execute(parse_program(TWO_PROCMEM_WRITES), cls).status == "lost-write"
    session = _HuntSession(cls, cls.name)
    session.target = "lost-write"
    session.found = [Found("base's", "lost-write", TWO_PROCMEM_WRITES, 1, 0.0)]
    assert session.hit() is None and not session._judged["base's"]
    own = (ROOT / "corpus" / "clear-refs-read-lock" / "store-during-cow-copy.cow").read_text()
    session.found.append(Found("own", "lost-write", own, 2, 0.0))
    assert session.hit().signature == "own"
    assert base_design(get_variant("table-free-no-rcu")) is get_variant("upstream")


def test_a_hunt_judges_a_signature_again_after_its_first_program_was_the_bases_bug():
    """A session reports the first program of each signature only, and a signature is
    coarse: the base's lost write and clear_refs' can share one. A later program of a
    signature first judged the base's is judged on its own; one judged the variant's own
    is reported once."""
    cls = get_variant("clear-refs-read-lock")
    session = _HuntSession(cls, cls.name)
    session.target = "lost-write"
    own = (ROOT / "corpus" / "clear-refs-read-lock" / "store-during-cow-copy.cow").read_text()
    session.record("lost-write", "shared", parse_program(TWO_PROCMEM_WRITES))
    assert session.hit() is None
    session.record("lost-write", "shared", parse_program(own))
    assert session.hit() is not None and len(session.found) == 1
    session.record("lost-write", "shared", parse_program(TWO_PROCMEM_WRITES))
    assert len(session.found) == 1 and session.hit() is not None


def test_every_reproducer_in_the_corpus_counts_as_its_variants_own_finding():
    """What a trial credits a variant with includes the hand-minimized reproducers: each
    violates its variant's oracle, and the base design stays clean of it."""
    checked = 0
    for path in sorted((ROOT / "corpus").glob("*/*.cow")):
        cls = get_variant(path.parent.name)
        if not getattr(cls, "expected_oracle", None):
            continue
        session = _HuntSession(cls, cls.name)
        session.target = cls.expected_oracle
        program = parse_program(path.read_text())
        outcome = execute(program, cls)
        assert outcome.failed, path
        session.found = [Found(path.name, outcome.status, path.read_text(), 1, 0.0)]
        assert session.hit() is not None, path
        checked += 1
    assert checked >= 30


@pytest.mark.slow
def test_a_timed_trial_makes_the_same_executions_as_a_counted_one():
    """A bench trial's slices are counted in executions, so the clock decides only where
    it stops: a find past the first slice comes at the same execution as in
    ``fuzz.bench.depth``, which stops at a count instead (time-sized slices drew a new
    generator wherever the clock cut them, and no trial could be run again)."""
    variant = get_variant("pageout-before-flush")
    counted, _ = executions_to_find(variant.name, "guided", 5, 10_000)
    timed = run_trial(variant.name, "guided", 5, 600.0, variant.expected_oracle)
    assert counted is not None and counted > SLICE_RUNS
    assert timed.found and timed.runs == counted
