"""The cowfuzz command line.

    cowfuzz run FILE|DIR|TOKEN... [--variant V]   replay programs, print trace and verdict
    cowfuzz variants                             list the designs

Exit status: 0 clean, 1 a violation (or a model error), 2 bad usage or input.
Bad input is reported on one line, ``file:line: what is wrong``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or unreadable input: one line on stderr, exit status 2."""


def _variant(name: str):
    from model.variants import VariantError, get_variant
    try:
        return get_variant(name)
    except VariantError as exc:
        raise UsageError(str(exc)) from None


def collect_inputs(args) -> list:
    """FILE, DIR (every *.cow below it) or replay TOKEN -> [(label, program, token variant)]."""
    from fuzz.textcodec import ParseError, read_program
    from fuzz.token import TokenError, is_token, model_version, parse_token
    out = []
    for arg in args:
        if is_token(arg):
            try:
                program, variant, version = parse_token(arg)
            except (TokenError, ParseError) as exc:
                raise UsageError(str(exc)) from None
            if version != model_version():
                print(f"warning: token made with model {version}, this is {model_version()}: "
                      "the trace may differ", file=sys.stderr)
            out.append(("<token>", program, variant))
            continue
        path = Path(arg)
        files = sorted(path.rglob("*.cow")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise UsageError(f"{path}: no .cow files")
        for f in files:
            try:
                out.append((str(f), read_program(f), None))
            except ParseError as exc:
                raise UsageError(str(exc)) from None
            except OSError as exc:
                raise UsageError(f"{f}: {exc.strerror or exc}") from None
    return out


def cmd_run(args) -> int:
    from fuzz.executor import execute
    from fuzz.token import make_token
    inputs = collect_inputs(args.inputs)
    verbose = args.trace or (len(inputs) == 1 and not args.quiet)
    worst = EXIT_CLEAN
    for label, program, token_variant in inputs:
        names = [args.variant] if args.variant else (
            [v for v, _ in program.expect] or [token_variant or program.found_on or "upstream"])
        for name in names:
            outcome = execute(program, _variant(name))
            status = "clean" if outcome.verdict == "ok" else outcome.oracle or outcome.verdict
            if verbose or outcome.failed:
                if outcome.failed:
                    print(make_token(program, name))
                print(outcome.trace.render_text(), end="")
                if outcome.error:
                    print(outcome.error, end="")
            expected = dict(program.expect).get(name)
            note = "" if expected is None else (
                "  (as expected)" if expected == status else f"  (expected {expected})")
            print(f"{label} on {name}: {status}, {len(outcome.trace.steps)} steps{note}")
            if outcome.failed:
                worst = EXIT_FOUND
    return worst


def cmd_variants(args) -> int:
    from model.variants import VARIANTS
    width = max(len(n) for n in VARIANTS)
    for name, cls in VARIANTS.items():
        bug = f"  [bug: {cls.expected_oracle}]" if cls.expected_oracle else ""
        print(f"{name:<{width}}  {cls.description}{bug}")
    return EXIT_CLEAN


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cowfuzz", description="Fuzz the Linux kernel's "
                                 "copy-on-write designs for concurrency bugs.")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="replay programs deterministically")
    run.add_argument("inputs", nargs="+", help=".cow files, directories, or replay tokens")
    run.add_argument("--variant", help="run on this variant (default: the file's expect lines)")
    run.add_argument("--trace", action="store_true", help="print every trace")
    run.add_argument("-q", "--quiet", action="store_true", help="one line per run")
    run.set_defaults(func=cmd_run)
    var = sub.add_parser("variants", help="list the designs")
    var.set_defaults(func=cmd_variants)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"cowfuzz: {exc}" if ":" not in str(exc).split(" ")[0] else str(exc),
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
