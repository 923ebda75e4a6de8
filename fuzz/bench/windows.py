"""How often a campaign reached a design's windows: scheduling points per corpus.

    python -m fuzz.bench.windows --variant cowpte-relaxed DIR [DIR ...]
        [--match copy_cow_pte_range recover_pte_range try_to_unmap_one:break_cow_pte]

replays every .cow file of the folders (a campaign's queue, a seed corpus)
once, on its own schedule, and counts, for each scheduling-point label, the
inputs that reached it and the steps taken there. A clean campaign on a
design means something only if it reached the design's risky windows: the
in-place preparation of a table, its unwind, the rmap walk meeting a shared
table. ``--match`` keeps the labels containing one of the given strings
(default: every label).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from fuzz.program.textcodec import ParseError, read_program
from fuzz.runtime.executor import execute
from model.variants import VariantError, get_variant


def reached(paths, variant_cls) -> tuple[int, Counter, Counter]:
    """(inputs replayed, inputs reaching each label, steps at each label)."""
    inputs, steps = Counter(), Counter()
    replayed = 0
    for path in paths:
        try:
            program = read_program(path)
        except (ParseError, OSError):
            continue
        trace = execute(program, variant_cls).trace
        replayed += 1
        labels = Counter(step.label for step in trace.steps)
        steps.update(labels)
        inputs.update(labels.keys())
    return replayed, inputs, steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.bench.windows", description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--variant", required=True)
    ap.add_argument("--match", nargs="*", default=(), help="keep labels containing one of these")
    args = ap.parse_args(argv)
    try:
        variant_cls = get_variant(args.variant)
    except VariantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = sorted(p for folder in args.folders for p in folder.rglob("*.cow"))
    replayed, inputs, steps = reached(paths, variant_cls)
    print(f"{replayed:,} inputs replayed on {args.variant}")
    print(f"{'inputs':>8} {'steps':>9}  label")
    for label in sorted(inputs, key=lambda lab: (-inputs[lab], lab)):
        if not args.match or any(m in label for m in args.match):
            print(f"{inputs[label]:>8,} {steps[label]:>9,}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
