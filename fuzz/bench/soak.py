"""Benchmark: SIGKILL a campaign at random moments; is everything its workers found kept?

    python -m fuzz.bench.soak [--trials 20] [--kill-after 3 25] [--variant V] [--strategy S]
                              [--jobs N] [--seed N] [--json OUT]

Each trial runs ``cowfuzz fuzz`` in a fresh folder (its own TMPDIR too), kills
the coordinator with SIGKILL at a random moment in the window, then runs the
same campaign again for a few seconds, and counts:

* sent: the violations the workers sent before the kill -- a worker journals
  each one (``campaigns/<variant>/found/``) before it sends it, so the
  complete journal lines are what was sent;
* on disk at the kill, and after the restart: how many of those have their
  crash folder (the goal is all of them after the restart: the restart saves
  what the journals hold);
* leftovers after the restart: files in TMPDIR, and scratch space, journals
  or temporary names in the campaign and crash folders (goal 0);
* partial or corrupt files: a crash folder missing a file, or whose input,
  token or reproducer does not parse, or whose input no longer shows its
  signature; a queue entry that does not parse (goal 0);
* workers or libFuzzer processes still alive 10 s after the kill (goal 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fuzz.program.replay_token import parse_token
from fuzz.program.textcodec import ParseError, parse_program
from fuzz.runtime.executor import execute
from fuzz.triage.signature import signature
from model.variants import get_variant

CRASH_FILES = ("signature.txt", "input.cow", "token.txt", "meta.json", "trace.txt", "report.html")


def _journaled(campaign: Path) -> set[str]:
    sent = set()
    for path in (campaign / "found").glob("*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                sent.add(json.loads(line)["signature"])
            except (ValueError, KeyError, TypeError):
                pass                           # cut short by the kill: never sent
    return sent


def _saved(crashes: Path) -> set[str]:
    out = set()
    for path in crashes.glob("*/signature.txt"):
        try:
            out.add(path.read_text().strip())
        except OSError:
            pass
    return out


def _corrupt(crashes: Path, queue: Path, variant: str) -> list[str]:
    """What is partial or corrupt among the crash folders and the queue."""
    bad = []
    variant_cls = get_variant(variant)
    for folder in sorted(p for p in crashes.iterdir() if p.is_dir()) if crashes.is_dir() else []:
        missing = [name for name in CRASH_FILES if not (folder / name).is_file()]
        if missing:
            bad.append(f"{folder.name}: missing {', '.join(missing)}")
            continue
        try:
            sig = (folder / "signature.txt").read_text().strip()
            program = parse_program((folder / "input.cow").read_text(), "input.cow")
            if parse_token((folder / "token.txt").read_text().strip())[0] != program:
                bad.append(f"{folder.name}: token.txt is not input.cow")
            json.loads((folder / "meta.json").read_text())
            if (folder / "repro.cow").exists():
                parse_program((folder / "repro.cow").read_text(), "repro.cow")
            if signature(execute(program, variant_cls), variant) != sig:
                bad.append(f"{folder.name}: input.cow no longer shows its signature")
        except (ParseError, ValueError, OSError) as exc:
            bad.append(f"{folder.name}: {exc}")
    for path in sorted(queue.glob("*.cow")) if queue.is_dir() else []:
        try:
            parse_program(path.read_text(), str(path))
        except (ParseError, OSError, UnicodeDecodeError) as exc:
            bad.append(f"queue/{path.name}: {exc}")
    return bad


def _leftovers(folder: Path, tmpdir: Path) -> list[str]:
    found = [f"TMPDIR/{p.name}" for p in tmpdir.iterdir()]
    campaign = folder / "campaign"
    for name in ("work", "found"):
        if (campaign / name).exists() and any((campaign / name).iterdir()):
            found.append(f"campaign/{name}/")
    for base in (campaign, folder / "crashes"):
        found += [str(p.relative_to(folder)) for p in base.rglob(".*") if p.name != ".lock"]
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _fuzz(folder: Path, args: argparse.Namespace, seed: int, *budget) -> list[str]:
    return [sys.executable, "-m", "fuzz.cli", "fuzz", "--variant", args.variant,
            "--strategy", args.strategy, "--jobs", str(args.jobs), "--seed", str(seed),
            "--corpus", str(folder / "corpus"), "--crashes", str(folder / "crashes"),
            "--campaign", str(folder / "campaign"), *budget]


def trial(index: int, args: argparse.Namespace, rng: random.Random) -> dict:
    kill_at = rng.uniform(*args.kill_after)
    with tempfile.TemporaryDirectory(prefix="cowfuzz-soak-") as tmp:
        folder = Path(tmp)
        tmpdir = folder / "tmp"
        tmpdir.mkdir()
        env = {**os.environ, "TMPDIR": str(tmpdir)}
        proc = subprocess.Popen(_fuzz(folder, args, args.seed + index, "--time", "600"),
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True)
        time.sleep(kill_at)            # the moment is the point of the benchmark
        proc.kill()
        printed = sum(" CRASH " in line for line in proc.communicate()[0].splitlines())
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = _group_alive(proc.pid)
        if orphans:
            os.killpg(proc.pid, signal.SIGKILL)
        sent = _journaled(folder / "campaign")
        at_kill = len(sent & _saved(folder / "crashes"))
        again = subprocess.run(_fuzz(folder, args, args.seed + 1000 + index,
                                     "--time", str(args.restart_time), "-q"),
                               env=env, capture_output=True, text=True, timeout=300)
        after = len(sent & _saved(folder / "crashes"))
        return {"trial": index, "killed_at": round(kill_at, 2), "crash_lines": printed,
                "sent": len(sent), "on_disk_at_kill": at_kill, "on_disk_after_restart": after,
                "restart_status": again.returncode,
                "leftovers": _leftovers(folder, tmpdir),
                "corrupt": _corrupt(folder / "crashes", folder / "campaign" / "queue",
                                    args.variant),
                "orphans": orphans}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--kill-after", type=float, nargs=2, default=(3.0, 25.0), metavar=("MIN", "MAX"))
    ap.add_argument("--variant", default="cowpte-rfc2")
    ap.add_argument("--strategy", default="coverage")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restart-time", type=float, default=5.0)
    ap.add_argument("--json", metavar="OUT", help="write every trial as JSON")
    args = ap.parse_args(argv)
    rng = random.Random(f"cowfuzz-soak:{args.seed}")
    print(f"{args.trials} trials: {args.variant}, {args.strategy}, {args.jobs} jobs, SIGKILL "
          f"after {args.kill_after[0]:g}-{args.kill_after[1]:g} s, restart {args.restart_time:g} s")
    print(f"{'trial':>5} {'killed':>7} {'sent':>5} {'at kill':>8} {'restart':>8} "
          f"{'leftovers':>9} {'corrupt':>7} {'orphans':>7}")
    rows = []
    for i in range(args.trials):
        row = trial(i, args, rng)
        rows.append(row)
        print(f"{i:>5} {row['killed_at']:>6.1f}s {row['sent']:>5} {row['on_disk_at_kill']:>8} "
              f"{row['on_disk_after_restart']:>8} {len(row['leftovers']):>9} "
              f"{len(row['corrupt']):>7} {int(row['orphans']):>7}", flush=True)
        for what in row["leftovers"] + row["corrupt"]:
            print(f"      {what}")
    sent = sum(r["sent"] for r in rows)
    at_kill = sum(r["on_disk_at_kill"] for r in rows)
    after = sum(r["on_disk_after_restart"] for r in rows)
    print(f"sent by workers {sent}; on disk at the kill {at_kill} "
          f"({100 * at_kill / max(sent, 1):.0f}%), after the restart {after} "
          f"({100 * after / max(sent, 1):.0f}%); trials with a finding and no crash folder "
          f"after the restart {sum(r['sent'] > 0 and r['on_disk_after_restart'] == 0 for r in rows)}; "
          f"leftovers {sum(len(r['leftovers']) for r in rows)}; "
          f"partial or corrupt {sum(len(r['corrupt']) for r in rows)}; "
          f"orphans {sum(r['orphans'] for r in rows)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
