"""The pytest plugin: .cow files are test items.

Registered as a pytest entry point (``pytest11``), so in any project where
cowfuzz is installed, ``pytest corpus/`` or ``pytest path/to/reproducers/``
replays every .cow file on every variant its ``expect`` lines name and
checks the recorded verdict ("clean", or the oracle that must fire). A
failing item prints one line: what was expected, what came, and which
``expect`` line (file:line) to change if the new verdict is right; with
``-v`` the crash report (fuzz/triage/report.py) or the trace follows. A file
that does not parse (or is not a regular file, or is over a bound) is a
collection error naming the file and line; a file without expectations is
skipped. Whatever it collects, the plugin never makes pytest itself fail.

A .cow file names designs by their registered names only; it never loads
code. Designs of your own are declared in the pytest configuration,
resolved relative to the file that declares them::

    [pytest]
    cowfuzz_designs = designs/my_design.py:MyDesign
"""

from __future__ import annotations

import pytest

from fuzz.program.textcodec import ParseError, read_program


def pytest_addoption(parser):
    parser.addini("cowfuzz_designs", type="linelist", default=[],
                  help="cowfuzz designs of your own (path/to/file.py:Class, relative to the "
                       "configuration file), for the .cow files that name them")


def pytest_configure(config):
    from model.variants import VariantError, load_designs
    base = config.inipath.parent if config.inipath else config.rootpath
    try:
        load_designs(config.getini("cowfuzz_designs"), base)
    except VariantError as exc:
        raise pytest.UsageError(f"cowfuzz_designs: {exc}") from None


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".cow":
        return CowFile.from_parent(parent, path=file_path)
    return None


class CowFile(pytest.File):
    def collect(self):
        try:
            program = read_program(self.path)
        except ParseError as exc:
            raise self.CollectError(str(exc)) from None
        except OSError as exc:
            raise self.CollectError(f"{self.path}: {exc.strerror or exc}") from None
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
    """The replay's verdict is not the recorded one: one line, and the report or trace."""

    def __init__(self, line: str, detail: str = ""):
        super().__init__(line)
        self.line = line
        self.detail = detail


class CowItem(pytest.Item):
    def __init__(self, *, program, variant, verdict, **kw):
        super().__init__(**kw)
        self.program = program
        self.variant = variant
        self.verdict = verdict

    def runtest(self) -> None:
        from fuzz.runtime.executor import execute
        from fuzz.triage.regression import mismatch_message
        from fuzz.triage.report import build_report, render_text, render_trace
        from model.variants import VariantError, get_variant
        try:
            variant_cls = get_variant(self.variant)
        except VariantError as exc:
            raise VerdictMismatch(f"{self.path}: {exc}") from None
        outcome = execute(self.program, variant_cls)
        got = outcome.status
        if got == self.verdict:
            return
        report = build_report(self.program, self.variant, outcome)
        detail = render_text(report) if outcome.failed else render_trace(report)
        if outcome.error:
            detail += outcome.error
        raise VerdictMismatch(mismatch_message(self._shown_path(), self.variant, self.verdict,
                                               got, self._expect_line()), detail)

    def _shown_path(self) -> str:
        """The file as the user would type it: relative to where pytest runs, if below it."""
        try:
            return str(self.path.relative_to(self.config.invocation_params.dir))
        except ValueError:
            return str(self.path)

    def _expect_line(self) -> int | None:
        """The line (from 1) of this item's expect line in its file."""
        from fuzz.triage.regression import expect_line
        if self.variant is None:
            return None
        try:
            return expect_line(self.path.read_text(encoding="utf-8"), self.variant)
        except (OSError, UnicodeDecodeError):
            return None

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, VerdictMismatch):
            mismatch = excinfo.value
            if self.config.get_verbosity() > 0 and mismatch.detail:
                return f"{mismatch.line}\n\n{mismatch.detail}"
            return mismatch.line
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        # a line number, never None: pytest's skip report asserts one
        line = self._expect_line()
        return (self.path, line - 1 if line is not None else 0,
                f"{self.path.name} on {self.variant}: expect {self.verdict}")
