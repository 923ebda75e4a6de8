"""A long campaign, measured while it runs: throughput, corpus, memory, restart.

    python -m fuzz.bench.long_campaign [--minutes 60] [--variant upstream]
        [--strategy coverage] [--jobs 2] [--dir DIR] [--json OUT] [--markdown OUT]

runs ``cowfuzz fuzz`` for the whole time from an empty corpus, and samples
every ``--sample`` seconds: the campaign's executions (its plot_data.csv),
the corpus it reports and the files in its queue, the RSS of the
coordinator, of each worker and of each worker's libFuzzer, and the load
of the machine. Then it starts the same campaign again on the same folders
and measures the time from the restart to its first new execution (the
"fuzzing: first executions" line) and the rate of its first minute.

Reports executions/s over the minute before minute 5 and before the last
minute, the corpus and queue against time, and the largest RSS of each
kind of process in the first and the last quarter of the run (bounded
memory: the last is not much above the first). docs/campaigns.md has the
last full run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def processes(coordinator: int) -> dict[str, list[int]]:
    """RSS (KiB) by role: the coordinator, the workers (the processes a libFuzzer runs
    under, or every spawned child but the helpers when the strategy runs none), the
    libFuzzers, the other children (minimizer, distiller, resource tracker)."""
    roles = {"coordinator": [_rss_kb(coordinator)], "worker": [], "libfuzzer": [], "other": []}
    for child in _children(coordinator):
        grandchildren = [g for g in _children(child) if "cowfuzz-libfuzzer" in _cmdline(g)]
        if grandchildren:
            roles["worker"].append(_rss_kb(child))
            roles["libfuzzer"] += [_rss_kb(g) for g in grandchildren]
        else:
            roles["other"].append(_rss_kb(child))
    return roles


def _last_plot_row(path: Path) -> dict | None:
    try:
        with path.open() as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    return rows[-1] if rows else None


def _queue_size(folder: Path) -> int:
    try:
        return sum(1 for e in os.scandir(folder) if e.name.endswith(".cow"))
    except OSError:
        return 0


def _descendants(pid: int) -> set[int]:
    out = {pid}
    for child in _children(pid):
        out |= _descendants(child)
    return out


def _busy_processes() -> list[str]:
    """What else used the CPU (ps: its share since it started), for the report."""
    mine = _descendants(os.getpid())
    out = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"],
                         capture_output=True, text=True).stdout.splitlines()[1:]
    return [line.strip()[:100] for line in out
            if int(line.split()[0]) not in mine and float(line.split()[1]) >= 5.0][:10]


def fuzz_command(args, folder: Path, seconds: float) -> list[str]:
    return [sys.executable, "-m", "fuzz.cli", "fuzz", "--variant", args.variant,
            "--strategy", args.strategy, "--jobs", str(args.jobs), "--seed", "1",
            "--time", str(seconds), "--corpus", str(folder / "corpus"),
            "--crashes", str(folder / "crashes"), "--campaign", str(folder / "campaign"),
            "--minimize-time", "30", *(["--max-queue", str(args.max_queue)] if args.max_queue
                                       else [])]


def run_campaign(args, folder: Path, busy: list) -> list[dict]:
    """Samples of the campaign; ``busy`` gets what else ran, every ten minutes."""
    log = open(folder / "campaign.log", "w")
    start = time.monotonic()
    proc = subprocess.Popen(fuzz_command(args, folder, args.minutes * 60), stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    samples = []
    next_sample = start
    while proc.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            next_sample += args.sample
            row = _last_plot_row(folder / "crashes" / "plot_data.csv") or {}
            roles = processes(proc.pid)
            samples.append({
                "t": round(now - start, 1),
                "executions": int(row.get("executions", 0) or 0),
                "plot_seconds": float(row.get("seconds", 0) or 0),
                "corpus": int(row.get("corpus", 0) or 0),
                "queue_files": _queue_size(folder / "campaign" / "queue"),
                "features": int(row.get("features", 0) or 0),
                "rss_kb": roles, "load": os.getloadavg()[0]})
            if len(samples) % max(1, int(600 / args.sample)) == 1:
                busy.append({"t": samples[-1]["t"], "processes": _busy_processes()})
            if args.verbose:
                print(json.dumps(samples[-1]), flush=True)
        time.sleep(max(0.0, min(1.0, next_sample - time.monotonic())))
    log.close()
    return samples


def rate_at(plot_rows: list[dict], minute: float) -> float | None:
    """Executions per second over the minute before ``minute`` (plot_data.csv rows)."""
    end = minute * 60
    inside = [r for r in plot_rows if end - 60 <= float(r["seconds"]) <= end]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    return (int(last["executions"]) - int(first["executions"])) / \
        max(1e-9, float(last["seconds"]) - float(first["seconds"]))


def restart(args, folder: Path) -> dict:
    """The same campaign again: seconds from the launch to its first new execution."""
    queue = _queue_size(folder / "campaign" / "queue")
    start = time.monotonic()
    proc = subprocess.Popen(fuzz_command(args, folder, 60), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    first = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if first is None and "fuzzing: first executions" in line:
            first = time.monotonic() - start
    proc.wait()
    (folder / "restart.log").write_text("".join(lines))
    return {"queue_at_restart": queue, "seconds_to_first_execution": round(first, 1)
            if first is not None else None}


def summarize(args, folder: Path, samples: list[dict], again: dict) -> dict:
    with open(folder / "crashes" / "plot_data.csv") as f:
        rows = list(csv.DictReader(f))
    running = [s for s in samples if s["rss_kb"]["worker"]]     # not starting nor ending
    n = len(running)
    quarter = max(1, n // 4)

    def peak(part, role):
        return max((max(s["rss_kb"][role]) for s in part if s["rss_kb"][role]), default=0)

    memory = {role: {"first_quarter_mb": round(peak(running[:quarter], role) / 1024, 1),
                     "last_quarter_mb": round(peak(running[-quarter:], role) / 1024, 1)}
              for role in ("coordinator", "worker", "libfuzzer")}
    last_minute = int(float(rows[-1]["seconds"]) // 60) if rows else 0
    return {"variant": args.variant, "strategy": args.strategy, "jobs": args.jobs,
            "minutes": args.minutes,
            "execs_per_s_minute_5": rate_at(rows, 5),
            f"execs_per_s_minute_{last_minute}": rate_at(rows, last_minute),
            "corpus_max": max((s["corpus"] for s in samples), default=0),
            "queue_max": max((s["queue_files"] for s in samples), default=0),
            "queue_end": samples[-1]["queue_files"] if samples else 0,
            "memory": memory, "restart": again,
            "load_mean": round(sum(s["load"] for s in samples) / max(1, n), 2)}


def markdown(summary: dict, samples: list[dict]) -> str:
    lines = ["| minute | executions | corpus | queue files | features | coordinator MB | "
             "workers MB | libFuzzers MB | load |", "|---|---|---|---|---|---|---|---|---|"]
    last = -1
    for s in samples:
        minute = int(s["t"] // 60)
        if minute == last or minute % 5:
            continue
        last = minute
        r = s["rss_kb"]
        lines.append(f"| {minute} | {s['executions']:,} | {s['corpus']:,} | "
                     f"{s['queue_files']:,} | {s['features']:,} | "
                     f"{r['coordinator'][0] / 1024:.0f} | "
                     f"{' '.join(f'{x / 1024:.0f}' for x in r['worker'])} | "
                     f"{' '.join(f'{x / 1024:.0f}' for x in r['libfuzzer'])} | "
                     f"{s['load']:.1f} |")
    return "\n".join(lines) + "\n\n```\n" + json.dumps(summary, indent=1) + "\n```\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--variant", default="upstream")
    ap.add_argument("--strategy", default="coverage")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-queue", type=int, help="the campaign's --max-queue (default its own)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--dir", help="the campaign's folders (default: a new temporary folder)")
    ap.add_argument("--json", help="write the samples and the summary here")
    ap.add_argument("--markdown", help="write the table and the summary here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = ap.parse_args(argv)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cowfuzz-long-"))
    (folder / "corpus").mkdir(parents=True, exist_ok=True)
    busy_before = _busy_processes()
    samples = run_campaign(args, folder, busy := [])
    busy_after = _busy_processes()
    again = restart(args, folder)
    summary = summarize(args, folder, samples, again)
    summary["other_processes"] = {"before": busy_before, "during": busy, "after": busy_after}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "samples": samples},
                                              indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown(summary, samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
