"""The trace fixture: 500 random programs on upstream and two buggy designs, run under
random schedules, summarised by the hash of everything an execution shows.

Optimisations of the executor, the scheduler or the oracles must not change a single
trace. ``tests/fixtures/traces.json.gz`` was written by this module at a commit
before such a change; test_trace_fixture.py runs the same executions and compares:
the whole trace text (with every change and event), its JSON form, the schedule, the
verdict and signature, the crash report's text, and the interleaving features. A few
traces are stored in full so that a mismatch can be shown as a diff.

    python -m tests.trace_fixture [PATH]      # (re)write the fixture
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import sys
from pathlib import Path

from fuzz.program.generate import random_program
from fuzz.program.program import Program
from fuzz.program.replay_token import model_version
from fuzz.runtime.choosers import RandomChooser
from fuzz.runtime.executor import execute
from fuzz.triage.report import build_report, render_text
from fuzz.triage.signature import signature
from model.variants import VARIANTS

FIXTURE = Path(__file__).parent / "fixtures" / "traces.json.gz"
DESIGNS = ("upstream", "cowpte-rfc2", "fork-no-early-cow")
SEEDS = range(500)
#: seeds whose whole trace text is stored too, to show a mismatch as a diff
FULL_TEXT_SEEDS = range(3)


def program_of(seed: int) -> tuple[Program, RandomChooser | None]:
    """Seed -> (program, chooser): every third program injects faults; odd seeds take a
    random schedule, even ones replay the program's own."""
    p = random_program(random.Random(seed), max_threads=4, max_ops=10, schedule_len=100,
                       preempt=0.4)
    if seed % 3 == 0:
        p = Program(p.mappings, p.threads, p.schedule, True)
    chooser = RandomChooser(random.Random(seed)) if seed % 2 else None
    return p, chooser


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def record(design: str, seed: int) -> tuple[dict, str]:
    """What one execution shows, hashed; and its whole trace text."""
    program, chooser = program_of(seed)
    outcome = execute(program, VARIANTS[design], chooser, features=True)
    text = outcome.trace.render_text()
    rec = {
        "trace": _h(text),
        "json": _h(json.dumps(outcome.trace.to_json(), sort_keys=True)),
        "schedule": list(outcome.schedule),
        "verdict": outcome.verdict,
        "stuck": outcome.stuck,
        "decisions": outcome.decisions,
        "features": _h(repr(sorted(outcome.features))),
        "points": _h(repr(sorted(outcome.points))),
    }
    if outcome.failed:
        rec["signature"] = signature(outcome, design)
        report = render_text(build_report(program, design, outcome))
        rec["report"] = _h(report.replace(model_version(), "MODEL"))
    return rec, text


def generate() -> dict:
    out = {"designs": {}, "texts": {}}
    for design in DESIGNS:
        recs = []
        for seed in SEEDS:
            rec, text = record(design, seed)
            recs.append(rec)
            if seed in FULL_TEXT_SEEDS:
                out["texts"][f"{design}/{seed}"] = text
        out["designs"][design] = recs
    return out


def load(path: Path = FIXTURE) -> dict:
    with gzip.open(path, "rt") as f:
        return json.load(f)


def main(argv=None) -> None:
    path = Path((argv or sys.argv[1:] or [FIXTURE])[0])
    data = generate()
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as f:
        f.write(json.dumps(data, sort_keys=True, indent=0).encode())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
