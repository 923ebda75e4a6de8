"""The cowfuzz command line.

    cowfuzz fuzz [--variant V] [--strategy S] [--time SEC] [--runs N] [--jobs N]
                 [--cluster ADDRESS|auto] [--fail-on any|new] [--known PATH...] ...
                                                 run a campaign
    cowfuzz run FILE|DIR|TOKEN... [--variant V]   replay programs, print trace and verdict
    cowfuzz minimize FILE|TOKEN [-o OUT] [--variant V]
                                                 shrink a failing program
    cowfuzz explore FILE|TOKEN [--bound K] [--variant V]
                                                 every schedule up to K preemptions
    cowfuzz corpus add CRASHDIR|FILE|TOKEN DEST [--expect clean|ORACLE]
                                                 keep a finding as a regression test
    cowfuzz corpus minimize DIR [-o OUT] [--variant V]
                                                 the smallest subset keeping every feature
    cowfuzz corpus stats DIR [--variant V]       entries, sizes, features of a corpus
    cowfuzz crashes DIR [--html OUT]             the crash folders, grouped, newest first
    cowfuzz bench [--variants V...] [--strategies S...] [--trials N] [--budget SEC]
                                                 the bug benchmark
    cowfuzz report FILE|TOKEN -o OUT.html        the HTML report of a run
    cowfuzz plot DIR                             draw a campaign's progress
    cowfuzz variants                             list the designs
    cowfuzz strategies                           list the search strategies
    cowfuzz --version

Exit status: 0 clean (``minimize``, ``corpus``, ``crashes``: done), 1 a violation
(``fuzz --fail-on new``: a violation no known signature has), a model
error or a verdict other than the ``expect`` line's (``corpus add``: not the
recorded verdict), 2 bad usage or input, a folder that cannot be written, or a
campaign that ran nothing; 130 (SIGINT) or 143 (SIGTERM) when interrupted.
Bad input is reported on one line, ``file:line: what is wrong``. Which design
an input replays on: fuzz/program/replay_design.py.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_VARIANT = "cowpte-rfc2"
#: the longest error line printed (what it quotes is cut short before this)
MAX_ERROR_LINE = 1000
#: explore's default time cap, seconds
EXPLORE_SECONDS = 120.0
#: a campaign distills its queue when it holds more entries than this (--max-queue)
DEFAULT_MAX_QUEUE = 10_000


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
    from fuzz.program.replay_design import replay_designs
    from fuzz.program.replay_token import make_token
    from fuzz.runtime.executor import execute
    from fuzz.triage.report import build_report, render_text, render_trace
    _declare(args)
    forced = _user_variant(args.variant).name if args.variant else None
    inputs = collect_inputs(args.inputs)
    verbose = args.trace or (len(inputs) == 1 and not args.quiet)
    worst = EXIT_CLEAN
    for label, program, token_variant in inputs:
        names = replay_designs(program, forced, token_variant, every_expected=True)
        classes = [_variant(name, label) for name in names]
        for name, cls in zip(names, classes):
            outcome = execute(program, cls)
            if not args.quiet and (outcome.failed or verbose):
                report = build_report(program, name, outcome)
                if outcome.failed:
                    print(make_token(program, name))
                    print(render_text(report), end="")
                    if outcome.error:
                        print(outcome.error, end="")
                else:
                    print(render_trace(report), end="")
            expected = dict(program.expect).get(name)
            print(f"{label} on {name}: {outcome.status}, {len(outcome.trace.steps)} steps"
                  + _expectation_note(label, name, expected, outcome.status))
            if outcome.failed or (expected is not None and expected != outcome.status):
                worst = EXIT_FOUND
    return worst


def _expectation_note(label: str, name: str, expected: str | None, got: str) -> str:
    """"(as expected)", or what the expect line says and which line to change."""
    from fuzz.triage.regression import expect_line
    if expected is None:
        return ""
    if expected == got:
        return "  (as expected)"
    try:
        lineno = expect_line(Path(label).read_text(encoding="utf-8"), name)
    except (OSError, UnicodeDecodeError):
        lineno = None
    where = f"; if {got} is right, change {label}:{lineno} to 'expect {name} {got}'" \
        if lineno is not None else ""
    return f"  (expected {expected}{where})"


def _single_input(arg: str):
    inputs = collect_inputs([arg])
    if len(inputs) != 1:
        raise UsageError(f"{arg}: give one program (a .cow file or a replay token)")
    return inputs[0]


def _variant_of(args, label, program, token_variant):
    """(name, class) of the design to replay an input on (fuzz/program/replay_design.py):
    --variant, else the token's, else the file's found-on, else its first expect line."""
    from fuzz.program.replay_design import replay_design
    _declare(args)
    if args.variant:
        cls = _user_variant(args.variant)
        return cls.name, cls
    name = replay_design(program, token_variant=token_variant)
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
    _positive_seconds(time=args.time, slice=args.slice, minimize_time=args.minimize_time)
    for flag, value in (("--runs", args.runs), ("--jobs", args.jobs),
                        ("--max-queue", args.max_queue)):
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be positive")
    if args.cluster is not None:
        from fuzz.search.cluster import INSTALL_HINT
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError(INSTALL_HINT) from None
    for path in args.known or ():
        if not Path(path).exists():
            raise UsageError(f"--known {path}: no such file or folder")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    slug = variant_cls.name
    seconds = args.time if args.time is not None else (None if args.runs else 60.0)
    config = CampaignConfig(
        variant=variant_cls.name, designs=_declared_specs(),
        strategy=args.strategy, seconds=seconds, runs=args.runs,
        jobs=args.jobs if args.jobs is not None or args.cluster else 1, seed=seed,
        cluster=args.cluster, max_queue=args.max_queue, known=tuple(args.known or ()),
        corpus_dir=Path(args.corpus) if args.corpus else Path("corpus") / slug,
        crashes_dir=Path(args.crashes) if args.crashes else Path("crashes") / slug,
        campaign_dir=Path(args.campaign) if args.campaign else Path("campaigns") / slug,
        slice_seconds=args.slice, minimize_seconds=args.minimize_time,
        stop_on_crash=args.stop_on_crash)
    from fuzz.search.cluster import ClusterError
    from fuzz.search.store import Busy, DiskError
    try:
        stats = Campaign(config, Reporter(quiet=args.quiet)).run()
    except (Busy, DiskError, ClusterError) as exc:
        raise UsageError(str(exc)) from None
    if stats.interrupted is not None:
        return 128 + stats.interrupted
    if stats.found_new if args.fail_on == "new" else stats.found_now:
        return EXIT_FOUND
    if stats.runs == 0:
        cpus = os.cpu_count() or 1
        jobs = config.jobs or 1
        if stats.worker_errors:
            why = f"every slice failed: {stats.worker_errors[0]}"
        elif jobs > cpus and not args.cluster:
            why = f"{jobs} jobs on {cpus} CPUs: the workers were still starting"
        else:
            why = "the workers did not start in time"
        print(f"cowfuzz: error: the campaign ran no program ({why}); nothing was tested",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_CLEAN


def _positive_seconds(**flags) -> None:
    """Durations must be finite and positive (nan and inf would never end a campaign)."""
    for name, value in flags.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of "
                             f"seconds, got {value}")


def _declared_specs() -> tuple[str, ...]:
    """Specs that load, in another process, every design the user declared here."""
    from model.variants import VARIANTS, declared_specs
    return tuple(declared_specs(VARIANTS.values()))


def cmd_minimize(args) -> int:
    from fuzz.runtime.executor import execute
    from fuzz.triage.minimize import minimize, shrink_text
    from fuzz.program.textcodec import format_program
    from fuzz.program.replay_token import make_token
    _positive_seconds(time=args.time)
    label, program, token_variant = _single_input(args.input)
    name, variant_cls = _variant_of(args, label, program, token_variant)
    if not execute(program, variant_cls).failed:
        raise UsageError(f"{label}: the program does not fail on this variant: nothing to "
                         f"minimize ({name})")
    print(f"cowfuzz: minimizing {label} on {name} (at most {args.time:g} s)", file=sys.stderr,
          flush=True)
    result = minimize(program, variant_cls, name, seconds=args.time)

    print(f"{label} on {name}: {shrink_text(result.before, result.after)} "
          f"({result.runs} runs, {result.seconds:.1f} s"
          f"{', time cap reached' if result.timed_out else ''})", file=sys.stderr)
    text = format_program(result.program)
    if args.output:
        from fuzz.search.store import atomic_write
        atomic_write(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(make_token(result.program, name), file=sys.stderr)
    return EXIT_CLEAN


def cmd_explore(args) -> int:
    from fuzz.triage.explore import explore
    from fuzz.program.replay_token import make_token
    _positive_seconds(time=args.time)
    if args.bound < 0:
        raise UsageError("--bound must be 0 or more")
    label, program, token_variant = _single_input(args.input)
    name, variant_cls = _variant_of(args, label, program, token_variant)
    result = explore(program.with_schedule(()), variant_cls, args.bound,
                     max_schedules=args.max_schedules, seconds=args.time)
    if result.failure is not None:
        from fuzz.triage.report import build_report, render_text
        failing = program.with_schedule(result.failure.schedule)
        print(make_token(failing, name))
        print(render_text(build_report(failing, name, result.failure)), end="")
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
    _positive_seconds(budget=args.budget)
    if args.trials <= 0 or args.jobs <= 0:
        raise UsageError("--trials and --jobs must be positive")
    return bench_main(args)


def cmd_report(args) -> int:
    from fuzz.triage.html_report import write_report
    label, program, token_variant = _single_input(args.input)
    name, variant_cls = _variant_of(args, label, program, token_variant)
    try:
        status = write_report(program, name, variant_cls, args.output, label)
    except OSError as exc:
        raise UsageError(f"{args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}")
    return status


def cmd_corpus_add(args) -> int:
    """Keep a finding as a regression test: replay it, confirm its verdict, write it."""
    from fuzz.search.store import atomic_write
    from fuzz.triage.regression import NotRecorded, regression_test
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest}: not a folder (DEST is the folder of regression tests)")
    label, program, token_variant, sig, stem = _finding(args.source)
    name, variant_cls = _variant_of(args, label, program, token_variant)
    if name != program.found_on:
        sig = None                   # the crash folder's signature is of another design
    if args.expect is not None:
        _check_verdict(args.expect)
    recorded = args.expect or dict(program.expect).get(name)
    try:
        test = regression_test(program, name, variant_cls, _variant("upstream"), label=label,
                               recorded=recorded, sig=sig, stem=stem)
    except NotRecorded as exc:
        why = f"--expect {args.expect}" if args.expect else f"its expect line says {recorded}"
        print(f"cowfuzz: {label} on {name}: {exc.got}, but {why}: nothing written (if "
              f"{exc.got} is right: --expect {exc.got})", file=sys.stderr)
        return EXIT_FOUND
    path, verb = _regression_path(dest, test.name, program)
    atomic_write(path, test.text)
    print(f"{verb} {path}: {test.expect_summary()}")
    return EXIT_CLEAN


def _finding(source: str):
    """(label, program, token variant, signature, name) of a crash folder (its repro.cow,
    else input.cow, its signature.txt and its name), a .cow file (its stem) or a token."""
    from fuzz.program.replay_token import is_token
    path = Path(source)
    sig = stem = None
    if not is_token(source) and path.is_dir():
        stem = path.resolve().name
        found = [path / n for n in ("repro.cow", "input.cow") if (path / n).is_file()]
        if not found:
            raise UsageError(f"{path}: not a crash folder (no repro.cow or input.cow)")
        try:
            sig = (path / "signature.txt").read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            sig = None
        path = found[0]
        source = str(path)
    elif not is_token(source):
        stem = path.stem
    label, program, token_variant = _single_input(source)
    return label, program, token_variant, sig, stem


def _check_verdict(verdict: str) -> None:
    from fuzz.program.textcodec import PLAIN_VERDICTS
    from model.oracles.errors import oracle_names
    if verdict not in PLAIN_VERDICTS and verdict not in oracle_names():
        raise UsageError(f"--expect {verdict}: not a verdict (clean, model-error or an oracle: "
                         f"{', '.join(sorted(oracle_names()))})")


def _regression_path(dest: Path, name: str, program) -> tuple[Path, str]:
    """Where the test goes: DEST/<name>, updated in place when it holds the same program,
    else the first free DEST/<stem>-N.cow."""
    from fuzz.program.textcodec import ParseError, read_program
    stem = name[:-len(".cow")]
    for n in range(1, 1000):
        path = dest / (name if n == 1 else f"{stem}-{n}.cow")
        if not path.exists():
            return path, "wrote"
        try:
            if read_program(path) == program:
                return path, "updated"
        except (ParseError, OSError):
            continue
    raise UsageError(f"{dest}: no free name for {name}")


def _corpus_files(folder: str) -> list:
    """(path, program) of every .cow below a folder; one line if it is not one."""
    from fuzz.program.textcodec import ParseError, read_program
    path = Path(folder)
    if not path.is_dir():
        raise UsageError(f"{path}: not a folder")
    out = []
    for f in sorted(p for p in path.rglob("*.cow") if not p.name.startswith(".")):
        try:
            out.append((f, read_program(f)))
        except ParseError as exc:
            print(f"cowfuzz: warning: skipping {exc}", file=sys.stderr)
        except OSError as exc:
            print(f"cowfuzz: warning: skipping {f}: {exc.strerror or exc}", file=sys.stderr)
    return out


def _measured(args):
    """Every file of ``args.dir`` run once with features: [(path, Entry)], by design."""
    from fuzz.program.replay_design import replay_design
    from fuzz.program.textcodec import format_program
    from fuzz.search.distill import Entry, measure
    _declare(args)
    forced = _user_variant(args.variant).name if args.variant else None
    measured, seen = [], set()
    for path, program in _corpus_files(args.dir):
        text = format_program(program)
        if text in seen:
            continue                 # the same program twice: one entry
        seen.add(text)
        name = forced or replay_design(program)
        entry = measure(str(path), program, text, _variant(name, str(path)))
        # features are per design: a folder may hold several
        measured.append((path, Entry(entry.key, entry.size,
                                     frozenset((name, f) for f in entry.features))))
    return measured


def cmd_corpus_minimize(args) -> int:
    import shutil
    from fuzz.search.distill import greedy_cover
    measured = _measured(args)
    kept = {e.key for e in greedy_cover([e for _, e in measured])}
    features = set().union(*(e.features for _, e in measured)) if measured else set()
    files = [p for p in sorted(Path(args.dir).rglob("*.cow")) if not p.name.startswith(".")]
    if args.output:
        out = Path(args.output)
        try:
            out.mkdir(parents=True, exist_ok=True)
            for path, _ in measured:
                if str(path) in kept:
                    dest = out / path.relative_to(args.dir)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, dest)
        except OSError as exc:
            raise UsageError(f"{out}: cannot write: {exc.strerror or exc}") from None
        where = f"copied to {out}"
    else:
        try:
            for path in files:
                if str(path) not in kept:
                    path.unlink()
        except OSError as exc:
            raise UsageError(f"{args.dir}: cannot remove {exc.filename}: "
                             f"{exc.strerror or exc}") from None
        where = f"the other {len(files) - len(kept):,} removed"
    print(f"{args.dir}: kept {len(kept):,} of {len(files):,} files, every one of their "
          f"{len(features):,} features; {where}")
    return EXIT_CLEAN


def cmd_corpus_stats(args) -> int:
    from fuzz.search.distill import greedy_cover
    measured = _measured(args)
    files = [p for p in Path(args.dir).rglob("*.cow") if not p.name.startswith(".")]
    if not measured:
        print(f"{args.dir}: {len(files)} .cow files, none readable")
        return EXIT_CLEAN
    ops = sorted(e.size[0] for _, e in measured)
    sched = sorted(e.size[1] for _, e in measured)
    features = set().union(*(e.features for _, e in measured))
    designs = sorted({d for _, e in measured for d, _f in e.features})
    cover = greedy_cover([e for _, e in measured])
    size = sum(p.stat().st_size for p in files)

    def spread(xs):
        return f"median {xs[len(xs) // 2]}, max {xs[-1]}"

    print("\n".join([
        f"{args.dir}: {len(files):,} .cow files ({size / 1024:,.0f} KiB), {len(measured):,} "
        f"distinct programs on {', '.join(designs) or '-'}",
        f"  operations       {spread(ops)}",
        f"  schedule length  {spread(sched)}",
        f"  features         {len(features):,}",
        f"  minimized        {len(cover):,} entries keep every feature (cowfuzz corpus minimize)"]))
    return EXIT_CLEAN


def cmd_crashes(args) -> int:
    from fuzz.triage.crash_index import read_crashes, render_index_html, render_summary
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (a crash folder, e.g. crashes/<variant>)")
    entries = read_crashes(folder)
    sys.stdout.write(render_summary(entries, folder))
    if args.html:
        from fuzz.search.store import atomic_write
        try:
            atomic_write(Path(args.html), render_index_html(entries, f"crashes in {folder}"))
        except OSError as exc:
            raise UsageError(f"{args.html}: {exc.strerror or exc}") from None
        print(f"wrote {args.html}")
    return EXIT_CLEAN


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


class _Version(argparse.Action):
    """--version: cowfuzz's version and the model version its tokens are bound to (computed
    only when asked: the model version hashes model/)."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version
        from fuzz.program.replay_token import model_version
        try:
            mine = version("cowfuzz")
        except PackageNotFoundError:
            mine = "(not installed)"
        print(f"cowfuzz {mine}, model {model_version()}")
        parser.exit()


def _add_fuzz_parser(sub, parents) -> None:
    """cowfuzz fuzz: a campaign's options."""
    fz = sub.add_parser("fuzz", help="run a fuzzing campaign", parents=parents)
    fz.add_argument("--variant", default=DEFAULT_VARIANT,
                    help=f"the design to fuzz (default {DEFAULT_VARIANT}; see 'cowfuzz variants')")
    fz.add_argument("--strategy", default="guided", help="search strategy (default guided; "
                    "see 'cowfuzz strategies')")
    fz.add_argument("--time", type=float, metavar="SEC",
                    help="the whole campaign, minimization included, in seconds (default 60, "
                         "or none when --runs is given)")
    fz.add_argument("--runs", type=int, metavar="N", help="stop after N executions")
    fz.add_argument("--jobs", type=int, metavar="N",
                    help="workers (default 1; on a cluster, one per CPU of the cluster)")
    fz.add_argument("--cluster", metavar="ADDRESS|auto",
                    help="run the workers as Ray actors on this Ray cluster (pip install "
                         "'cowfuzz[ray]'; see the README, 'Running on a cluster')")
    fz.add_argument("--seed", type=int, metavar="N", help="campaign seed (default: random, printed)")
    fz.add_argument("--corpus", metavar="DIR",
                    help="seed corpus, only read (default corpus/<variant>)")
    fz.add_argument("--crashes", metavar="DIR", help="crash folder (default crashes/<variant>)")
    fz.add_argument("--campaign", metavar="DIR",
                    help="the campaign's own folder: its queue, scratch space and journals "
                         "(default campaigns/<variant>)")
    fz.add_argument("--slice", type=float, default=10.0, metavar="SEC",
                    help="seconds a worker fuzzes between syncs (default 10)")
    fz.add_argument("--minimize-time", type=float, default=60.0, metavar="SEC",
                    help="time cap of each minimization (default 60)")
    fz.add_argument("--stop-on-crash", action="store_true",
                    help="end the campaign after the first new violation")
    fz.add_argument("--fail-on", choices=("any", "new"), default="any",
                    help="exit 1 for any violation found (default), or only for one whose "
                         "signature is not known (the crash folder's, the seed corpus's expect "
                         "lines, --known)")
    fz.add_argument("--known", nargs="+", metavar="PATH",
                    help="crash folders and regression corpora (.cow files with expect lines) "
                         "whose signatures are known")
    fz.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE, metavar="N",
                    help=f"distill the campaign's queue when it holds more than N entries "
                         f"(default {DEFAULT_MAX_QUEUE:,})")
    fz.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    fz.set_defaults(func=cmd_fuzz)


def _add_corpus_parser(sub, parents) -> None:
    """cowfuzz corpus add|minimize|stats."""
    cp = sub.add_parser("corpus", help="manage regression tests (.cow files with expect lines)")
    cps = cp.add_subparsers(dest="corpus_command", required=True)
    add = cps.add_parser("add", help="keep a finding as a regression test", parents=parents)
    add.add_argument("source", metavar="CRASHDIR|FILE|TOKEN",
                     help="a crash folder (its repro.cow, else input.cow), a .cow file or a token")
    add.add_argument("dest", metavar="DEST", help="the folder of regression tests")
    add.add_argument("--expect", metavar="clean|ORACLE",
                     help="the verdict it must come to now (default: the one it records)")
    add.add_argument("--variant", help="default: the token's variant, else the file's found-on, "
                     "else its first expect line")
    add.set_defaults(func=cmd_corpus_add)
    cmin = cps.add_parser("minimize", parents=parents,
                          help="the smallest subset of a corpus keeping every feature")
    cmin.add_argument("dir", metavar="DIR", help="a folder of .cow files")
    cmin.add_argument("-o", "--output", metavar="OUT",
                      help="copy the subset here (default: remove the rest from DIR)")
    cmin.add_argument("--variant", help="run every file on this design (default: each file's "
                      "found-on, else its first expect line, else upstream)")
    cmin.set_defaults(func=cmd_corpus_minimize)
    cst = cps.add_parser("stats", parents=parents, help="entries, sizes and features of a corpus")
    cst.add_argument("dir", metavar="DIR", help="a folder of .cow files")
    cst.add_argument("--variant", help="as for minimize")
    cst.set_defaults(func=cmd_corpus_stats)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cowfuzz", description="Fuzz the Linux kernel's "
                                 "copy-on-write designs for concurrency bugs.")
    ap.add_argument("--version", action=_Version, help="print the version and exit")
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
    run.add_argument("-q", "--quiet", action="store_true",
                     help="one line per run and nothing else")
    run.set_defaults(func=cmd_run)
    _add_fuzz_parser(sub, parents)
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
    ex.add_argument("--time", type=float, default=EXPLORE_SECONDS, metavar="SEC",
                    help=f"stop after SEC seconds (default {EXPLORE_SECONDS:g})")
    ex.set_defaults(func=cmd_explore)
    bn = sub.add_parser("bench", help="the bug benchmark: strategies against known bugs", parents=parents)
    bn.add_argument("--variants", nargs="+", metavar="V", help="default: every variant")
    bn.add_argument("--strategies", nargs="+", metavar="S",
                    help="default: coverage guided random pct pos surw exhaustive")
    bn.add_argument("--trials", type=int, default=5, help="trials per bug (default 5)")
    bn.add_argument("--budget", type=float, default=60.0, metavar="SEC",
                    help="seconds per trial (default 60)")
    bn.add_argument("--jobs", type=int, default=1, help="trials run in parallel (default 1)")
    bn.add_argument("--json", metavar="OUT", help="write every trial and the table as JSON")
    bn.add_argument("--markdown", metavar="OUT", help="write the table as Markdown")
    bn.add_argument("--plot", metavar="OUT.png", help="plot bugs found against time")
    bn.set_defaults(func=cmd_bench)
    rp = sub.add_parser("report", help="write the HTML report of a program's run", parents=parents)
    rp.add_argument("input", help="a .cow file or a replay token")
    rp.add_argument("-o", "--output", required=True, metavar="OUT.html")
    rp.add_argument("--variant", help="default: the token's variant, else the file's found-on, "
                    "else its first expect line")
    rp.set_defaults(func=cmd_report)
    _add_corpus_parser(sub, parents)
    cr = sub.add_parser("crashes", help="a crash folder's findings, grouped by oracle and "
                        "message, newest first")
    cr.add_argument("dir", metavar="DIR", help="a crash folder, e.g. crashes/<variant>")
    cr.add_argument("--html", metavar="OUT.html", help="also write the index page here")
    cr.set_defaults(func=cmd_crashes)
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
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("cowfuzz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (cowfuzz run ... | head): stop quietly, and keep Python's
        # final flush of stdout from failing again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FOUND


def _main(argv) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        text = " ".join(str(exc).split())
        if len(text) > MAX_ERROR_LINE:
            text = text[:MAX_ERROR_LINE - 3] + "..."
        print(f"cowfuzz: {text}" if ":" not in text.split(" ")[0] else text, file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
