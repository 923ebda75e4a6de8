"""The libFuzzer (atheris) harness: the coverage-guided strategy's process.

    cowfuzz-libfuzzer --variant V --results FILE [libFuzzer flags] CORPUS_DIR...

An executable entry point (a console script), because libFuzzer's -fork,
-jobs and -merge modes re-execute argv[0]. Flags starting with '--' are
ours (libFuzzer ignores them); the rest go to libFuzzer.

* Only ``model`` is instrumented (line/branch coverage of the kernel
  paths), without its oracles (``ORACLE_MODULES``): they run after every
  step and say nothing about which kernel paths an input reaches, and
  instrumenting them made every execution 1.8x slower. The interleaving
  features of fuzz/runtime/features.py go to libFuzzer as extra counters, so
  an input that reaches a new interleaving is kept even when it covers no new
  line.
* The custom mutator works on Programs (fuzz/program/mutate.py), with libFuzzer's
  own byte mutation now and then; crossover splices two programs. One
  mutation in five is a freshly generated program instead (as syzkaller
  mixes generation with mutation): the generator knows which operations
  combine, and without it the search stays near its first seeds (on the
  bug benchmark, 59 of 75 (bug, trial) pairs found without, 63 with).
* A violation does not stop libFuzzer: its first occurrence per signature
  is appended (one JSON line, flushed) to the results file, and fuzzing
  goes on. The campaign's worker reads that file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import atheris

NCOUNTERS = 8192
#: the oracles' modules: model/ but not kernel paths, so not instrumented
ORACLE_MODULES = ("model.oracles", "model.oracles.errors", "model.oracles.fork_window",
                  "model.oracles.invariants", "model.oracles.lost_writes", "model.oracles.sharp",
                  "model.oracles.spec", "model.oracles.tlb_promise")
#: share of custom mutations that generate a new program instead of editing one
GENERATE = 0.2


def _parse_own_args(argv):
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--variant", default="upstream")
    ap.add_argument("--design", action="append", default=[],
                    help="a design of the user's to load (file.py:Class), repeatable")
    ap.add_argument("--results", default=None)
    ap.add_argument("--features", choices=("on", "off"), default="on")
    own, rest = ap.parse_known_args(argv[1:])
    return own, [argv[0], *rest]


def main() -> None:
    own, lf_argv = _parse_own_args(sys.argv)
    with atheris.instrument_imports(include=["model"], exclude=list(ORACLE_MODULES)):
        import model  # noqa: F401
        from model.variants import get_variant, load_designs
    from fuzz.program.bytecodec import decode, encode
    from fuzz.runtime.executor import execute
    from fuzz.program.generate import random_program
    from fuzz.program.mutate import crossover, mutate
    from fuzz.triage.signature import signature
    from fuzz.program.textcodec import format_program

    load_designs(own.design)
    variant_cls = get_variant(own.variant)
    counters = [atheris._reserve_counter() for _ in range(NCOUNTERS)] \
        if own.features == "on" else []
    seen: set[str] = set()
    results = open(own.results, "a", encoding="utf-8") if own.results else None
    stats = {"runs": 0}

    def test_one_input(data: bytes) -> None:
        program = decode(data)
        outcome = execute(program, variant_cls, features=bool(counters))
        stats["runs"] += 1
        if counters:
            trace_branch = atheris._trace_branch
            for f in outcome.features:
                trace_branch(counters[f % NCOUNTERS])
        if outcome.failed:
            sig = signature(outcome, own.variant)
            if sig not in seen:
                seen.add(sig)
                if results is not None:
                    record = {"signature": sig, "oracle": outcome.status,
                              "program": format_program(program.with_schedule(outcome.schedule)),
                              "run": stats["runs"], "pid": os.getpid(),
                              "monotonic": time.monotonic()}
                    results.write(json.dumps(record) + "\n")
                    results.flush()
                    os.fsync(results.fileno())

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < GENERATE:
            return encode(random_program(rng, max_threads=3, max_ops=6))[:max_size]
        if rng.random() < 0.15:
            return atheris.Mutate(data, max_size)
        return encode(mutate(rng, decode(data)))[:max_size]

    def custom_crossover(data1: bytes, data2: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        return encode(crossover(rng, decode(data1), decode(data2)))[:max_size]

    atheris.Setup(lf_argv, test_one_input, custom_mutator=custom_mutator,
                  custom_crossover=custom_crossover)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
