"""Recorded verdicts: a .cow file's ``expect`` lines as regression tests.

A regression test is a .cow file whose ``expect`` lines record the verdict
of each design it names ("clean", or the oracle that must fire). When a
replay disagrees, the message says what to change, in one line: either the
design regressed, or its verdict moved on purpose (a fixed bug) and the
``expect`` line is what is out of date.

``regression_test`` turns a finding (a crash folder's reproducer, a .cow
file, a token's program) into such a file's name and text, once its replay
confirmed the verdict; ``cowfuzz corpus add`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fuzz.program.textcodec import format_program
from fuzz.runtime.executor import execute
from fuzz.triage.signature import signature, signature_slug


def expect_line(text: str, design: str) -> int | None:
    """The line number (from 1) of the ``expect <design> ...`` line in a .cow text."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "expect" and words[1] == design and \
                not raw[:1].isspace():
            return lineno
    return None


def mismatch_message(where: str, design: str, expected: str, got: str,
                     lineno: int | None = None) -> str:
    """One line: what was expected, what came, and which line to change if the new
    verdict is right."""
    line = f"{where}:{lineno}" if lineno is not None else where
    return (f"{where} on {design}: expected {expected}, got {got}; if {got} is right, change "
            f"{line} to 'expect {design} {got}'")


class NotRecorded(ValueError):
    """The replay's verdict is not the one recorded (or asked for): nothing is written."""

    def __init__(self, got: str, recorded: str):
        super().__init__(f"{got}, not {recorded}")
        self.got = got
        self.recorded = recorded


@dataclass
class RegressionTest:
    name: str              # the file name: <oracle>-<hash>.cow, as the crash folder's
    text: str              # the .cow text, with its expect lines
    design: str
    verdict: str           # what the design's run came to
    upstream: str | None   # upstream's verdict, when it is clean (else None: no line)

    def expect_summary(self) -> str:
        lines = [f"expect {self.design} {self.verdict}"]
        if self.upstream is not None:
            lines.append(f"expect upstream {self.upstream}")
        return ", ".join(lines)


def regression_test(program, design: str, variant_cls, upstream_cls, *, label: str,
                    recorded: str | None = None, sig: str | None = None,
                    stem: str | None = None) -> RegressionTest:
    """The regression test of ``program`` on ``design``: replay it there and on upstream,
    and keep the verdicts. ``recorded`` is the verdict it must come to (the ``--expect``
    asked for, else the file's own expect line); NotRecorded if it does not. The name is
    the signature's slug (``sig``, else the failing run's), else ``stem``, else the
    verdict and the design."""
    outcome = execute(program, variant_cls)
    got = outcome.status
    if recorded is not None and got != recorded:
        raise NotRecorded(got, recorded)
    upstream = None
    if design != "upstream":
        if not execute(program, upstream_cls).failed:
            upstream = "clean"
    if sig is None and outcome.failed:
        sig = signature(outcome, design)
    name = signature_slug(sig) if sig else (stem or f"{got}-{design}")
    expect = [(design, got)] + ([("upstream", upstream)] if upstream else [])
    kept = replace(program, expect=tuple(expect), found_on=program.found_on or design)
    what = sig or f"{got} on {design}"
    text = f"# {what}\n# from {label}\n" + format_program(kept)
    return RegressionTest(f"{name}.cow", text, design, got, upstream)
