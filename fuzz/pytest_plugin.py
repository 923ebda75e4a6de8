"""The pytest plugin: .cow files are test items.

Registered as a pytest entry point (``pytest11``), so in any project where
cowfuzz is installed, ``pytest corpus/`` or ``pytest path/to/reproducers/``
replays every .cow file on every variant its ``expect`` lines name and
checks the recorded verdict ("clean", or the oracle that must fire). A
failing item prints the crash report (fuzz/report.py). A file that does not
parse is a collection error naming the file and line; a file without
expectations (a campaign's queue entry) is skipped.
"""

from __future__ import annotations

import pytest

from fuzz.textcodec import ParseError, read_program


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".cow":
        return CowFile.from_parent(parent, path=file_path)
    return None


class CowFile(pytest.File):
    def collect(self):
        try:
            program = read_program(self.path)
        except (ParseError, OSError) as exc:
            raise self.CollectError(str(exc)) from None
        if not program.expect:
            item = CowItem.from_parent(self, name="no-expectations", program=program,
                                       variant=None, verdict=None)
            item.add_marker(pytest.mark.skip(reason=f"{self.path.name} has no expect lines"))
            yield item
            return
        for variant, verdict in program.expect:
            yield CowItem.from_parent(self, name=variant, program=program, variant=variant,
                                      verdict=verdict)


class VerdictMismatch(Exception):
    """The replay's verdict is not the recorded one; the message is the report."""


class CowItem(pytest.Item):
    def __init__(self, *, program, variant, verdict, **kw):
        super().__init__(**kw)
        self.program = program
        self.variant = variant
        self.verdict = verdict

    def runtest(self) -> None:
        from fuzz.executor import execute
        from fuzz.report import build_report, render_text
        from model.variants import get_variant
        outcome = execute(self.program, get_variant(self.variant))
        got = "clean" if not outcome.failed else (outcome.oracle or outcome.verdict)
        if got == self.verdict:
            return
        text = (render_text(build_report(self.program, self.variant, outcome))
                if outcome.failed else outcome.trace.render_text())
        if outcome.error:
            text += outcome.error
        raise VerdictMismatch(f"{self.path} on {self.variant}: expected {self.verdict}, got "
                              f"{got}\n\n{text}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, VerdictMismatch):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.path.name} on {self.variant}: expect {self.verdict}"
