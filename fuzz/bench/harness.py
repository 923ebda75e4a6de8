"""Benchmark: what the coverage strategy costs per execution beyond the plain executor.

    python -m fuzz.bench.harness [--seconds S]

The coverage strategy runs cowfuzz-libfuzzer (fuzz/search/harness.py): model/ is
imported under atheris's instrumentation, every execution collects interleaving
features, and libFuzzer's loop decodes each input, runs it, feeds the features
to its counters and mutates the next input with our custom mutator. Each row
below runs in a fresh process and measures executions per second of CPU time:

* the standard program (fuzz/bench/executor.py) on upstream: plain; with
  features; with model/ instrumented as well; and with the harness's own work
  per input added (decode, counters, one custom mutation);
* the loops end to end for the same time: libFuzzer driving cowfuzz-libfuzzer
  from an empty corpus, and the random strategy's generate-and-execute loop
  with the harness's generator settings. Their programs differ, so this row
  compares loops, not executions of one program.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

_MEASURE = r'''
import json, random, sys, time
mode, seconds = sys.argv[1], float(sys.argv[2])
if mode in ("instrumented", "harness"):
    import atheris
    from fuzz.search.harness import ORACLE_MODULES
    with atheris.instrument_imports(include=["model"], exclude=list(ORACLE_MODULES)):
        import model
        from model.variants import get_variant
from fuzz.bench.executor import standard_program
from fuzz.program.bytecodec import decode, encode
from fuzz.program.mutate import mutate
from fuzz.runtime.executor import execute
from model.variants import get_variant
upstream = get_variant("upstream")
prog = standard_program()
data = encode(prog)
features = mode != "plain"
if mode == "harness":
    counters = [atheris._reserve_counter() for _ in range(8192)]
    rng = random.Random(1)
    def one():
        outcome = execute(decode(data), upstream, features=True)
        for f in outcome.features:
            atheris._trace_branch(counters[f % 8192])
        mutate(rng, decode(data))
else:
    def one():
        execute(prog, upstream, features=features)
one()
n = 0
start = time.process_time()
while time.process_time() - start < seconds:
    one()
    n += 1
print(json.dumps(n / (time.process_time() - start)))
'''

_RANDOM_LOOP = r'''
import json, random, sys, time
from fuzz.program.generate import random_program
from fuzz.runtime.executor import execute
from model.variants import get_variant
upstream = get_variant("upstream")
rng = random.Random(1)
seconds = float(sys.argv[1])
n = 0
start = time.process_time()
while time.process_time() - start < seconds:
    execute(random_program(rng, max_threads=3, max_ops=6), upstream, features=True)
    n += 1
print(json.dumps(n / (time.process_time() - start)))
'''


def _run(code: str, *args) -> float:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _libfuzzer_rate(seconds: float) -> float:
    """cowfuzz-libfuzzer for ``seconds`` from an empty corpus: executions per CPU second."""
    with tempfile.TemporaryDirectory(prefix="cowfuzz-bench-") as tmp:
        before = os.times()
        proc = subprocess.run(["cowfuzz-libfuzzer", "--variant", "upstream", "-seed=1",
                               f"-max_total_time={int(seconds)}", "-print_final_stats=1",
                               tmp], capture_output=True, text=True)
        after = os.times()
        cpu = after.children_user + after.children_system \
            - before.children_user - before.children_system
        runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
        if runs is None:
            raise RuntimeError(f"cowfuzz-libfuzzer printed no stats:\n{proc.stderr[-2000:]}")
        return int(runs.group(1)) / cpu


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args(argv)
    rows = [(f"standard program, {mode}", _run(_MEASURE, mode, args.seconds))
            for mode in ("plain", "features", "instrumented", "harness")]
    plain = rows[0][1]
    print(f"{'':<44} {'exec/s':>8} {'cost':>6}")
    for name, rate in rows:
        print(f"{name:<44} {rate:>8.0f} {plain / rate:>5.2f}x")
    rnd = _run(_RANDOM_LOOP, args.seconds)
    lf = _libfuzzer_rate(args.seconds)
    print(f"{'random loop (generate + execute, features)':<44} {rnd:>8.0f} {1:>5.2f}x")
    print(f"{'libFuzzer loop (cowfuzz-libfuzzer)':<44} {lf:>8.0f} {rnd / lf:>5.2f}x")


if __name__ == "__main__":
    main()
