"""Signatures already known: what a campaign found is new only if it is not one of them.

Two sources, as CI has them:

* a crash folder (``crashes/<design>/``): the ``signature.txt`` of each of its
  folders;
* a regression corpus (``.cow`` files with ``expect`` lines): each file with
  an ``expect`` line naming the design and an oracle is replayed on the
  design, and the signature of the violation it comes to is known (a file
  that no longer fails there adds nothing).

``known_signatures`` takes any mix of folders and files, and says where
each signature came from.
"""

from __future__ import annotations

from pathlib import Path

from fuzz.program.textcodec import PLAIN_VERDICTS, ParseError, read_input, read_program
from fuzz.runtime.executor import execute
from fuzz.triage.signature import signature


def crash_folder_signatures(folder: Path) -> dict[str, str]:
    out = {}
    for sig_file in sorted(Path(folder).glob("*/signature.txt")):
        try:
            sig = read_input(sig_file, 1 << 16).strip()
        except (OSError, ParseError):
            continue
        if sig:
            out[sig] = str(sig_file.parent)
    return out


def regression_signatures(paths: list[Path], design: str, variant_cls, warn=None) -> dict[str, str]:
    out = {}
    for path in paths:
        try:
            program = read_program(path)
        except ParseError as exc:
            if warn:
                warn(f"warning: skipping {exc}")
            continue
        except OSError as exc:
            if warn:
                warn(f"warning: skipping {path}: {exc.strerror or exc}")
            continue
        expected = dict(program.expect).get(design)
        if expected is None or expected in PLAIN_VERDICTS:
            continue
        outcome = execute(program, variant_cls)
        if outcome.failed:
            out.setdefault(signature(outcome, design), str(path))
    return out


def known_signatures(sources, design: str, variant_cls, warn=None) -> dict[str, str]:
    """{signature: where it is known from} of crash folders and regression corpora (folders
    of .cow files, or files). A source that does not exist is skipped."""
    out: dict[str, str] = {}
    for source in map(Path, sources):
        if source.is_dir():
            out.update({k: v for k, v in crash_folder_signatures(source).items() if k not in out})
            cows = sorted(p for p in source.rglob("*.cow") if not p.name.startswith("."))
        elif source.is_file():
            cows = [source]
        else:
            continue
        for sig, where in regression_signatures(cows, design, variant_cls, warn).items():
            out.setdefault(sig, where)
    return out
