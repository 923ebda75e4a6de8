"""The cowfuzz command line.

    cowfuzz fuzz [--variant V] [--strategy S] [--time SEC] [--runs N] [--jobs N] ...
                                                 run a campaign
    cowfuzz run FILE|DIR|TOKEN... [--variant V]   replay programs, print trace and verdict
    cowfuzz minimize FILE [-o OUT] [--variant V]  shrink a failing program
    cowfuzz explore FILE [--bound K] [--variant V]
                                                 every schedule up to K preemptions
    cowfuzz bench [--variants V...] [--strategies S...] [--trials N] [--budget SEC]
                                                 the bug benchmark
    cowfuzz report FILE -o OUT.html              the HTML report of a run
    cowfuzz plot DIR                             draw a campaign's progress
    cowfuzz variants                             list the designs
    cowfuzz strategies                           list the search strategies

Exit status: 0 clean, 1 a violation (or a model error), 2 bad usage or input.
Bad input is reported on one line, ``file:line: what is wrong``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
DEFAULT_VARIANT = "cowpte-rfc2"


class UsageError(Exception):
    """Bad usage or unreadable input: one line on stderr, exit status 2."""


def _variant(name: str, where: str | None = None):
    """The design an input names: a registered name only (inputs never load code)."""
    from model.variants import VariantError, get_variant
    try:
        return get_variant(name)
    except VariantError as exc:
        raise UsageError(f"{where}: {exc}" if where else str(exc)) from None


def _declare(args) -> None:
    """Load the designs the user declared with --designs (trusted: the command line)."""
    from model.variants import VariantError, load_designs
    try:
        load_designs(getattr(args, "designs", None) or ())
    except VariantError as exc:
        raise UsageError(str(exc)) from None


def _user_variant(arg: str):
    """The design named by --variant: a registered name or the user's path.py:Class."""
    from model.variants import VariantError, load_design
    try:
        return load_design(arg)
    except VariantError as exc:
        raise UsageError(str(exc)) from None


def collect_inputs(args) -> list:
    """FILE, DIR (every *.cow below it) or replay TOKEN -> [(label, program, token variant)]."""
    from fuzz.program.textcodec import ParseError, read_program
    from fuzz.program.replay_token import TokenError, is_token, model_version, parse_token
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
    from fuzz.runtime.executor import execute
    from fuzz.triage.report import build_report, render_text
    from fuzz.program.replay_token import make_token
    _declare(args)
    forced = _user_variant(args.variant).name if args.variant else None
    inputs = collect_inputs(args.inputs)
    verbose = args.trace or (len(inputs) == 1 and not args.quiet)
    worst = EXIT_CLEAN
    for label, program, token_variant in inputs:
        names = [forced] if forced else (
            [v for v, _ in program.expect] or [token_variant or program.found_on or "upstream"])
        classes = [_variant(name, label) for name in names]
        for name, cls in zip(names, classes):
            outcome = execute(program, cls)
            status = "clean" if outcome.verdict == "ok" else outcome.oracle or outcome.verdict
            if outcome.failed:
                print(make_token(program, name))
                print(render_text(build_report(program, name, outcome)), end="")
                if outcome.error:
                    print(outcome.error, end="")
            elif verbose:
                print(outcome.trace.render_text(), end="")
            expected = dict(program.expect).get(name)
            note = "" if expected is None else (
                "  (as expected)" if expected == status else f"  (expected {expected})")
            print(f"{label} on {name}: {status}, {len(outcome.trace.steps)} steps{note}")
            if outcome.failed:
                worst = EXIT_FOUND
    return worst


def _single_input(arg: str):
    inputs = collect_inputs([arg])
    if len(inputs) != 1:
        raise UsageError(f"{arg}: give one program (a .cow file or a replay token)")
    return inputs[0]


def _variant_of(args, label, program, token_variant):
    """(name, class) of the design to replay an input on: --variant, else the one the
    input names (its token, found-on line, or first expect line)."""
    _declare(args)
    if args.variant:
        cls = _user_variant(args.variant)
        return cls.name, cls
    name = token_variant or program.found_on or \
        next((v for v, _ in program.expect), "upstream")
    return name, _variant(name, label)


def cmd_fuzz(args) -> int:
    import os
    from fuzz.search.campaign import Campaign, CampaignConfig
    from fuzz.search.progress import Reporter
    from fuzz.search.strategies import STRATEGIES
    _declare(args)
    variant_cls = _user_variant(args.variant)
    if args.strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {args.strategy!r} (known: {', '.join(STRATEGIES)})")
    for flag, value in (("--time", args.time), ("--runs", args.runs), ("--jobs", args.jobs)):
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be positive")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    slug = variant_cls.name
    seconds = args.time if args.time is not None else (None if args.runs else 60.0)
    config = CampaignConfig(
        variant=variant_cls.name, designs=_declared_specs(),
        strategy=args.strategy, seconds=seconds, runs=args.runs,
        jobs=args.jobs, seed=seed,
        corpus_dir=Path(args.corpus) if args.corpus else Path("corpus") / slug,
        crashes_dir=Path(args.crashes) if args.crashes else Path("crashes") / slug,
        slice_seconds=args.slice, minimize_seconds=args.minimize_time,
        stop_on_crash=args.stop_on_crash)
    from fuzz.search.store import Busy
    try:
        stats = Campaign(config, Reporter(quiet=args.quiet)).run()
    except Busy as exc:
        raise UsageError(str(exc)) from None
    return EXIT_FOUND if stats.violations else EXIT_CLEAN


def _declared_specs() -> tuple[str, ...]:
    """Specs that load, in another process, every design the user declared here."""
    from model.variants import VARIANTS, declared_specs
    return tuple(declared_specs(VARIANTS.values()))


def cmd_minimize(args) -> int:
    from fuzz.triage.minimize import minimize
    from fuzz.program.textcodec import format_program
    from fuzz.program.replay_token import make_token
    label, program, token_variant = _single_input(args.input)
    name, variant_cls = _variant_of(args, label, program, token_variant)
    try:
        result = minimize(program, variant_cls, name, seconds=args.time)
    except ValueError as exc:
        raise UsageError(f"{label}: {exc} ({name})") from None

    def show(d):
        return f"{d['operations']} operations, {d['threads']} threads, {d['preemptions']} preemptions"
    print(f"{label} on {name}: {show(result.before)} -> {show(result.after)} "
          f"({result.runs} runs, {result.seconds:.1f} s{', time cap reached' if result.timed_out else ''})",
          file=sys.stderr)
    text = format_program(result.program)
    if args.output:
        from fuzz.search.store import atomic_write
        atomic_write(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(make_token(result.program, name), file=sys.stderr)
    return EXIT_FOUND


def cmd_explore(args) -> int:
    from fuzz.triage.explore import explore
    from fuzz.program.replay_token import make_token
    label, program, token_variant = _single_input(args.input)
    name, variant_cls = _variant_of(args, label, program, token_variant)
    result = explore(program.with_schedule(()), variant_cls, args.bound,
                     max_schedules=args.max_schedules, seconds=args.time)
    if result.failure is not None:
        failing = program.with_schedule(result.failure.schedule)
        print(make_token(failing, name))
        print(result.failure.trace.render_text(), end="")
    print(f"{label} on {name}: {result.proof_line()}")
    return EXIT_FOUND if result.failure is not None else EXIT_CLEAN


def cmd_bench(args) -> int:
    from fuzz.bench.bugs import bench_main
    from fuzz.search.strategies import STRATEGIES
    _declare(args)
    if args.variants:
        args.variants = [_user_variant(name).name for name in args.variants]
    for name in args.strategies or ():
        if name not in STRATEGIES:
            raise UsageError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    if args.trials <= 0 or args.budget <= 0 or args.jobs <= 0:
        raise UsageError("--trials, --budget and --jobs must be positive")
    return bench_main(args)


def cmd_report(args) -> int:
    from fuzz.triage.html_report import write_report
    from fuzz.program.textcodec import ParseError
    from model.variants import VariantError
    _declare(args)
    variant = _user_variant(args.variant).name if args.variant else None
    try:
        status = write_report(args.input, args.output, variant)
    except VariantError as exc:
        raise UsageError(f"{args.input}: {exc}") from None
    except ParseError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{args.input}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}")
    return status


def cmd_plot(args) -> int:
    folder = Path(args.dir)
    if not (folder / "plot_data.csv").is_file():
        raise UsageError(f"{folder}: no plot_data.csv (a campaign folder, e.g. crashes/<variant>)")
    from fuzz.plot import plot_campaign
    try:
        out = plot_campaign(folder, args.output)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {out}")
    return EXIT_CLEAN


def cmd_strategies(args) -> int:
    from fuzz.search.strategies import STRATEGIES
    width = max(map(len, STRATEGIES))
    for name, strategy in STRATEGIES.items():
        print(f"{name:<{width}}  {strategy.description}")
    return EXIT_CLEAN


def cmd_variants(args) -> int:
    from model.variants import VARIANTS
    _declare(args)
    width = max(len(n) for n in VARIANTS)
    for name, cls in VARIANTS.items():
        bug = f"  [bug: {cls.expected_oracle}]" if cls.expected_oracle else ""
        print(f"{name:<{width}}  {cls.description}{bug}")
    return EXIT_CLEAN


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cowfuzz", description="Fuzz the Linux kernel's "
                                 "copy-on-write designs for concurrency bugs.")
    sub = ap.add_subparsers(dest="command", required=True)
    designs = argparse.ArgumentParser(add_help=False)
    designs.add_argument("--designs", nargs="+", metavar="FILE.py:CLASS", default=[],
                         help="load these designs of your own (a .cow file or token names a "
                              "design by its name; it never loads one)")
    parents = [designs]
    run = sub.add_parser("run", help="replay programs deterministically", parents=parents)
    run.add_argument("inputs", nargs="+", help=".cow files, directories, or replay tokens")
    run.add_argument("--variant", help="run on this variant (default: the file's expect lines)")
    run.add_argument("--trace", action="store_true", help="print every trace")
    run.add_argument("-q", "--quiet", action="store_true", help="one line per run")
    run.set_defaults(func=cmd_run)
    fz = sub.add_parser("fuzz", help="run a fuzzing campaign", parents=parents)
    fz.add_argument("--variant", default=DEFAULT_VARIANT,
                    help=f"the design to fuzz (default {DEFAULT_VARIANT}; see 'cowfuzz variants')")
    fz.add_argument("--strategy", default="coverage", help="search strategy (default coverage; "
                    "see 'cowfuzz strategies')")
    fz.add_argument("--time", type=float, metavar="SEC",
                    help="stop after SEC seconds (default 60, or none when --runs is given)")
    fz.add_argument("--runs", type=int, metavar="N", help="stop after N executions")
    fz.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes")
    fz.add_argument("--seed", type=int, metavar="N", help="campaign seed (default: random, printed)")
    fz.add_argument("--corpus", metavar="DIR", help="corpus folder (default corpus/<variant>)")
    fz.add_argument("--crashes", metavar="DIR", help="crash folder (default crashes/<variant>)")
    fz.add_argument("--slice", type=float, default=10.0, metavar="SEC",
                    help="seconds a worker fuzzes between syncs (default 10)")
    fz.add_argument("--minimize-time", type=float, default=60.0, metavar="SEC",
                    help="time cap of each minimization (default 60)")
    fz.add_argument("--stop-on-crash", action="store_true",
                    help="end the campaign after the first new violation")
    fz.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    fz.set_defaults(func=cmd_fuzz)
    mn = sub.add_parser("minimize", help="shrink a failing program, keeping its signature", parents=parents)
    mn.add_argument("input", help="a .cow file or a replay token")
    mn.add_argument("-o", "--output", help="write the result here (default: stdout)")
    mn.add_argument("--variant", help="default: the token's variant, else the file's found-on")
    mn.add_argument("--time", type=float, default=120.0, metavar="SEC", help="time cap")
    mn.set_defaults(func=cmd_minimize)
    ex = sub.add_parser("explore", help="run one program under every schedule up to a bound", parents=parents)
    ex.add_argument("input", help="a .cow file or a replay token")
    ex.add_argument("--bound", type=int, default=2, help="most preemptions (default 2)")
    ex.add_argument("--variant", help="default: the token's variant, else the file's found-on")
    ex.add_argument("--max-schedules", type=int, metavar="N", help="stop after N schedules")
    ex.add_argument("--time", type=float, metavar="SEC", help="stop after SEC seconds")
    ex.set_defaults(func=cmd_explore)
    bn = sub.add_parser("bench", help="the bug benchmark: strategies against known bugs", parents=parents)
    bn.add_argument("--variants", nargs="+", metavar="V", help="default: every variant")
    bn.add_argument("--strategies", nargs="+", metavar="S",
                    help="default: coverage random pct pos surw exhaustive")
    bn.add_argument("--trials", type=int, default=5, help="trials per bug (default 5)")
    bn.add_argument("--budget", type=float, default=60.0, metavar="SEC",
                    help="seconds per trial (default 60)")
    bn.add_argument("--jobs", type=int, default=1, help="trials run in parallel (default 1)")
    bn.add_argument("--json", metavar="OUT", help="write every trial and the table as JSON")
    bn.add_argument("--markdown", metavar="OUT", help="write the table as Markdown")
    bn.add_argument("--plot", metavar="OUT.png", help="plot bugs found against time")
    bn.set_defaults(func=cmd_bench)
    rp = sub.add_parser("report", help="write the HTML report of a program's run", parents=parents)
    rp.add_argument("input", help="a .cow file")
    rp.add_argument("-o", "--output", required=True, metavar="OUT.html")
    rp.add_argument("--variant", help="default: the file's found-on, else its expect lines")
    rp.set_defaults(func=cmd_report)
    pl = sub.add_parser("plot", help="draw a campaign's progress (campaign.png)")
    pl.add_argument("dir", help="the campaign folder (the crash folder, e.g. crashes/<variant>)")
    pl.add_argument("-o", "--output", help="default: DIR/campaign.png")
    pl.set_defaults(func=cmd_plot)
    var = sub.add_parser("variants", help="list the designs", parents=parents)
    var.set_defaults(func=cmd_variants)
    stg = sub.add_parser("strategies", help="list the search strategies")
    stg.set_defaults(func=cmd_strategies)
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
