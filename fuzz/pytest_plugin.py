"""The pytest plugin: .cow files are test items.

Registered as a pytest entry point (``pytest11``), so in any project where
cowfuzz is installed, ``pytest corpus/`` or ``pytest path/to/reproducers/``
replays every .cow file on every variant its ``expect`` lines name and
checks the recorded verdict ("clean", or the oracle that must fire). A
failing item prints the crash report (fuzz/triage/report.py). A file that does not
parse (or is not a regular file, or is over a bound) is a collection error
naming the file and line; a file without expectations is skipped. Whatever
it collects, the plugin never makes pytest itself fail.

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
    """The replay's verdict is not the recorded one; the message is the report."""


class CowItem(pytest.Item):
    def __init__(self, *, program, variant, verdict, **kw):
        super().__init__(**kw)
        self.program = program
        self.variant = variant
        self.verdict = verdict

    def runtest(self) -> None:
        from fuzz.runtime.executor import execute
        from fuzz.triage.report import build_report, render_text
        from model.variants import VariantError, get_variant
        try:
            variant_cls = get_variant(self.variant)
        except VariantError as exc:
            raise VerdictMismatch(f"{self.path}: {exc}") from None
        outcome = execute(self.program, variant_cls)
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
        # a line number, never None: pytest's skip report asserts one
        return self.path, 0, f"{self.path.name} on {self.variant}: expect {self.verdict}"
