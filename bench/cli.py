"""The command line: the only place that reads argv.

    python -m bench check [--sizes 16,32,32,1 --batch 32 --dtype float32 --init normal --scale 1]
    python -m bench tolerances
    python -m bench run [--preset default | --config FILE --preset NAME | --sizes ... --batch ...]
    python -m bench report RUN_DIR
    python -m bench diagnose [--inits normal,xavier,kaiming,oversized --threshold 0.97]
    python -m bench trace [--sizes 1,1,1 --z 1,20]
    python -m bench hlo [--sizes 128,256,256,1 --batch 2048]
    python -m bench compare RUN_A RUN_B [--fail-above PCT]

Bad input gets one line naming the bad value and what is allowed, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import pandas as pd

from impls import DEVICES, DTYPES, INITS, REGISTRY, TIMED, DeviceUnavailable, load_plugin
from impls.network import Problem, format_sizes, make_inputs

PROG = "python -m bench"


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(message)


def parse_sizes(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",")]
    sizes = []
    for part in parts:
        if not part.isdigit() or int(part) <= 0:
            raise UsageError(f"--sizes {text!r}: {part!r} is not a positive integer "
                             "(give widths like 16,32,32,1)")
        sizes.append(int(part))
    if len(sizes) < 2:
        raise UsageError(f"--sizes {text!r} has {len(sizes)} entry; need at least two "
                         "(input and output widths, e.g. 16,1)")
    return tuple(sizes)


def parse_impls(text: str, allowed) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            raise UsageError(f"--impl {name!r} is not an implementation; choose from "
                             f"{', '.join(allowed)}")
    if not names:
        raise UsageError(f"--impl is empty; choose from {', '.join(allowed)}")
    return names


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return int(text)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def parse_threads(text: str) -> tuple[int, ...]:
    counts = []
    for part in text.split(","):
        if not part.strip().isdigit() or int(part) <= 0:
            raise UsageError(f"--threads {text!r}: {part.strip()!r} is not a positive integer")
        counts.append(int(part))
    return tuple(dict.fromkeys(counts))


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


def add_problem_options(parser: argparse.ArgumentParser) -> None:
    defaults = Problem()
    parser.add_argument("--sizes", default=format_sizes(defaults.sizes),
                        help="layer widths d0,d1,...,dL (default %(default)s)")
    parser.add_argument("--batch", type=positive_int, default=defaults.batch,
                        help="examples per batch (default %(default)s)")
    parser.add_argument("--init", choices=INITS, default=defaults.init,
                        help="weight init (default %(default)s)")
    parser.add_argument("--std", type=non_negative_float, default=defaults.std,
                        help="weight std of the normal init (default %(default)s)")
    parser.add_argument("--scale", type=non_negative_float, default=defaults.scale,
                        help="multiplies the initial weights; 20 saturates tanh (default %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed,
                        help="seed of parameters and data (default %(default)s)")


def problem_from(args) -> Problem:
    try:
        return Problem(sizes=parse_sizes(args.sizes), batch=args.batch, init=args.init,
                       std=args.std, scale=args.scale, seed=args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _fmt(value) -> str:
    if isinstance(value, (bool, str)):
        return str(value)
    return f"{value:.1e}"


def format_table(frame: pd.DataFrame) -> str:
    return frame.map(_fmt).to_markdown(index=False)


def cmd_check(args) -> int:
    from bench.agreement import TOLERANCE, check, input_overflow, nonfinite_summary

    problem = problem_from(args)
    names = parse_impls(args.impl, list(REGISTRY)) if args.impl else list(TIMED)
    from bench import memory

    why = memory.refusal(problem, args.dtype, 1, memory.available_cpu_bytes())
    if why:
        raise UsageError(f"sizes {format_sizes(problem.sizes)}: {why}")
    params, x, y = make_inputs(problem)
    agreement = check(params, x, y, [REGISTRY[name] for name in names], dtype=args.dtype,
                      device=args.device)
    table = agreement.table.copy()
    table["verdict"] = [("agrees" if ok else "DISAGREES") + ("" if resolved else " (unresolved)")
                        for ok, resolved in zip(table["agrees"], table["resolved"])]
    shown = table[["impl", "tensor", "max_abs_err", "norm_rel_err", "one_minus_cos",
                   "err_ratio", "exact", "approx", "verdict"]]
    print(f"Problem: sizes {format_sizes(problem.sizes)}, batch {problem.batch}, init {problem.init}, "
          f"scale {problem.scale:g}, seed {problem.seed}; {args.dtype} on {args.device}, "
          f"against the float64 oracle")
    print()
    print(format_table(shown))
    unresolved = table.loc[~table["resolved"], "tensor"].unique()
    if len(unresolved):
        print()
        print(f"Unresolved in {args.dtype}: {', '.join(unresolved)}. Rounding alone decides so much "
              "of these tensors that the gate cannot tell a wrong gradient from a right one there.")
    if len(agreement.pairwise):
        print()
        print("Between implementations:")
        print(format_table(agreement.pairwise[["pair", "tensor", "max_abs_diff", "norm_rel_diff",
                                               "exact"]]))
    overflow = input_overflow(params, x, y, args.dtype)
    faults = [f"{impl}: {summary}" for impl, group in agreement.table.groupby("impl", sort=False)
              if (summary := nonfinite_summary(group))]
    if overflow or faults:
        print()
        print("Numerical faults: " + "; ".join(filter(None, [overflow] + faults)))
    print()
    verdicts = agreement.verdicts()
    failing = [name for name, ok in verdicts.items() if not ok]
    gate = f"err_ratio <= 1, tolerance {TOLERANCE[args.dtype]:.0e} in {args.dtype}"
    if failing:
        print(f"DISAGREE: {', '.join(failing)} (gate: {gate})")
        return 1
    print(f"All {len(verdicts)} implementations agree with the oracle (gate: {gate}).")
    return 0


def cmd_tolerances(args) -> int:
    from bench.agreement import measure_tolerances

    impls = [REGISTRY[name] for name in TIMED]
    summary = measure_tolerances(impls, progress=lambda line: print(line, file=sys.stderr))
    print(summary.reset_index().to_markdown(index=False, floatfmt=".1e"))
    return 0 if (summary["margin"] >= 10).all() else 1


def cmd_run(args) -> int:
    from pathlib import Path

    from bench import report, run
    from bench.cases import PRESETS, ConfigError, Plan, load_preset

    for plugin in args.plugin:
        try:
            load_plugin(plugin)
        except ValueError as error:
            raise UsageError(str(error)) from None
    resume = None
    if args.resume:
        resume = Path(args.resume)
        if not (resume / "run.json").exists() or not resume.name.startswith(".partial-"):
            raise UsageError(f"--resume {args.resume!r} is not an interrupted run "
                             "(a results/.partial-<run-id> folder with run.json)")
    defaults = Problem()
    shaping = [f"--{key}" for key in ("batch", "init", "std", "scale", "seed")
               if getattr(args, key) != getattr(defaults, key)]
    if args.sizes is None and shaping:
        raise UsageError(f"{shaping[0]} shapes a one-case run and needs --sizes; a preset's cases "
                         "set their own (edit a copy of bench/presets.toml for --config)")
    try:
        if args.sizes is not None:
            if args.config:
                raise UsageError("--sizes describes one case; it cannot be combined with --config")
            base = Plan(cases=(problem_from(args),), preset="custom")
        else:
            base = load_preset(args.preset or "default", Path(args.config) if args.config else PRESETS)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    plan = base.with_overrides(
        impls=tuple(parse_impls(args.impl, list(REGISTRY))) if args.impl else None,
        dtypes=(args.dtype,) if args.dtype else None,
        devices=(args.device,) if args.device else None,
        threads=parse_threads(args.threads) if args.threads else None, max_time=args.max_time,
        steps=args.steps,
        matmul_precision="tensorfloat32" if args.allow_tf32 else None,
        case_timeout=args.case_timeout, plugins=tuple(args.plugin) or None)
    cores = len(os.sched_getaffinity(0))
    if plan.threads and max(plan.threads) > cores:
        raise UsageError(f"--threads {args.threads}: this machine has {cores} usable cores")

    def progress(line):
        print(line, file=sys.stderr, flush=True)

    command = " ".join([PROG] + sys.argv[1:]) if args.argv is None else " ".join([PROG] + args.argv)
    try:
        run_dir, code = run.run(plan, Path(resume.parent if resume else args.output), command,
                                progress=progress, diagnostics=not args.no_diagnostics,
                                resume=resume)
    except run.RunError as error:
        raise UsageError(str(error)) from None
    except run.RunInterrupted as interrupted:
        print(f"{PROG}: {interrupted}", file=sys.stderr)
        return 130
    results = pd.read_csv(run_dir / "results.csv", keep_default_na=False, na_values=[""])
    print(report.summary_table(results))
    print()
    print(f"Report: {run_dir / 'report.md'}")
    print("All implementations agreed; nothing failed." if code == 0 else
          "Some implementations disagreed or failed: see the report.")
    return code


def cmd_report(args) -> int:
    from pathlib import Path

    from bench import report

    run_dir = Path(args.run_dir)
    if not any(run_dir.glob("records-*.jsonl")):
        raise UsageError(f"{str(run_dir)!r} is not a run directory (no records-*.jsonl in it)")
    report.write_report(run_dir)
    print(f"Rebuilt {run_dir / 'report.md'}")
    return 0


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            raise UsageError(f"{option} {text!r}: {part.strip()!r} is not a finite number")
        values.append(value)
    return tuple(values)


def cmd_diagnose(args) -> int:
    from pathlib import Path

    from bench import diagnose

    try:
        config = diagnose.with_overrides(
            diagnose.DiagnoseConfig(),
            sizes=parse_sizes(args.sizes) if args.sizes else None, batch=args.batch,
            schemes=(tuple(s.strip() for s in args.inits.split(",") if s.strip())
                     if args.inits is not None else None),
            oversize=args.oversize, threshold=args.threshold, dtype=args.dtype, seed=args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    out = Path(args.output) if args.output else diagnose.default_output(Path("results"))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write to {str(out.parent)!r}: {error.strerror}") from None
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write to {str(out.parent)!r}: permission denied")
    layers, agreement = diagnose.write(config, out)
    if not args.quiet:
        print(diagnose.markdown(config, layers, agreement, []))
    print(f"Diagnostics: {out / 'diagnostics.md'}", file=sys.stderr)
    return 0


def cmd_trace(args) -> int:
    from bench import trace

    try:
        config = trace.TraceConfig(sizes=parse_sizes(args.sizes), batch=args.batch,
                                   z=parse_floats(args.z, "--z"), dtype=args.dtype)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(f"The chain rule, step by step, on sizes {','.join(map(str, config.sizes))}, batch "
          f"{config.batch}: x = 1, y = 0, first-layer weights z / d0, later weights 1 / d_in, "
          "biases 0.\n")
    for z in config.z:
        print(trace.render(trace.trace(config.sizes, config.batch, z, config.dtype), z, config.dtype))
    return 0


def cmd_hlo(args) -> int:
    from bench.hlo import compare_programs

    problem = problem_from(args)
    table = compare_programs(problem, dtype=args.dtype)
    print(f"Optimised XLA programs for sizes {format_sizes(problem.sizes)}, batch {problem.batch}, "
          f"{args.dtype}: instructions by opcode\n")
    print(table.reset_index().to_markdown(index=False))
    same = bool((table.iloc[:, 0] == table.iloc[:, 1]).all())
    print()
    print("The two programs have the same instruction counts." if same else
          "The programs differ: see the rows where the counts do.")
    return 0


def cmd_compare(args) -> int:
    from pathlib import Path

    from bench import compare

    if (args.run_a is None) != (args.run_b is None):
        raise UsageError("give two run directories, or none to compare the two newest in results/")
    if args.run_a is None:
        runs = sorted(p for p in Path("results").glob("2*") if (p / "env.json").exists())
        if len(runs) < 2:
            raise UsageError(f"results/ holds {len(runs)} complete run(s); comparing needs two "
                             "(run make bench twice, or name two run directories)")
        args.run_a, args.run_b = runs[-2], runs[-1]
    run_a, run_b = Path(args.run_a).resolve(), Path(args.run_b).resolve()
    try:
        table = compare.compare_runs(run_a, run_b)
        warnings = compare.environment_differences(run_a, run_b)
    except compare.CompareError as error:
        raise UsageError(str(error)) from None
    out = Path(args.output) if args.output else run_a.parent / f"compare-{run_a.name}-vs-{run_b.name}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        text = compare.markdown(table, run_a, run_b, warnings)
        table.to_csv(out / "compare.csv", index=False)
        (out / "compare.md").write_text(text)
    except OSError as error:
        raise UsageError(f"cannot write to {str(out)!r}: {error.strerror}") from None
    print(text)
    print(f"Written: {out / 'compare.md'}, {out / 'compare.csv'}", file=sys.stderr)
    for line in warnings:
        print(f"warning: runs differ in {line}", file=sys.stderr)
    if args.fail_above is not None:
        failing = compare.regressions(table, args.fail_above)
        if len(failing):
            print(f"REGRESSION: {len(failing)} case(s) slower by more than {args.fail_above:g}%: "
                  + ", ".join(f"{r.impl} {r.case} ({r.change_pct:+.1f}%)" for r in failing.itertuples()),
                  file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Check and time gradients of one tanh MLP.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="agreement of every implementation with the oracle")
    add_problem_options(check)
    check.add_argument("--dtype", choices=DTYPES, default="float32")
    check.add_argument("--device", choices=DEVICES, default="cpu")
    check.add_argument("--impl", default="", help=f"comma-separated, from {', '.join(REGISTRY)}")
    check.set_defaults(run=cmd_check)

    tolerances = commands.add_parser("tolerances", help="measure the agreement gate's tolerances")
    tolerances.set_defaults(run=cmd_tolerances)

    bench = commands.add_parser("run", help="time the implementations over a preset's cases")
    bench.add_argument("--preset", default=None, help="quick, default or full (default: default)")
    bench.add_argument("--config", default=None, help="a TOML file of presets (see bench/presets.toml)")
    add_problem_options(bench)
    bench.set_defaults(sizes=None)
    bench.add_argument("--impl", default="", help=f"comma-separated, from {', '.join(REGISTRY)}")
    bench.add_argument("--dtype", choices=DTYPES, default=None)
    bench.add_argument("--device", choices=("cpu", "gpu", "auto"), default=None)
    bench.add_argument("--threads", default=None,
                       help="CPU threads per framework, or a sweep like 1,2 (default: every core)")
    bench.add_argument("--steps", type=positive_int, default=None,
                       help="gradient evaluations per call: lax.scan in JAX, a loop in torch, "
                            "a CUDA graph on GPUs (default 1)")
    bench.add_argument("--max-time", type=positive_float, default=None,
                       help="seconds of timing per benchmark (default: the preset's)")
    bench.add_argument("--allow-tf32", action="store_true",
                       help="allow TF32 float32 matmuls on GPUs, in both frameworks")
    bench.add_argument("--output", default="results", help="results directory (default %(default)s)")
    bench.add_argument("--no-diagnostics", action="store_true",
                       help="skip python -m bench diagnose in the run directory")
    bench.add_argument("--case-timeout", type=positive_float, default=None, metavar="SECONDS",
                       help="stop and fail a benchmark that runs longer (default 600)")
    bench.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                       help="a module whose IMPLEMENTATIONS list joins the registry (repeatable)")
    bench.add_argument("--resume", default=None, metavar="PARTIAL_DIR",
                       help="continue an interrupted run kept in results/.partial-<run-id>, "
                            "with that run's own plan and output folder")
    bench.set_defaults(run=cmd_run, argv=None)

    diag = commands.add_parser("diagnose", help="where the message dies, per init scheme")
    diag.add_argument("--sizes", default=None, help="layer widths (default 32,64 x8,1)")
    diag.add_argument("--batch", type=positive_int, default=None, help="examples (default 256)")
    diag.add_argument("--inits", default=None,
                      help="comma-separated, from normal,xavier,kaiming,oversized (default all)")
    diag.add_argument("--oversize", type=positive_float, default=None,
                      help="weight scale of the oversized init (default 20)")
    diag.add_argument("--threshold", type=float, default=None,
                      help="|t| above it counts as saturated, in (0, 1) (default 0.97)")
    diag.add_argument("--dtype", choices=DTYPES, default=None)
    diag.add_argument("--seed", type=non_negative_int, default=None)
    diag.add_argument("--output", default=None, help="folder (default results/diagnose-<time>)")
    diag.add_argument("--quiet", action="store_true", help="do not print the report")
    diag.set_defaults(run=cmd_diagnose)

    walk = commands.add_parser("trace", help="every chain-rule step of a tiny net, beside autograd")
    walk.add_argument("--sizes", default="1,1,1", help="layer widths (default %(default)s)")
    walk.add_argument("--batch", type=positive_int, default=1)
    walk.add_argument("--z", default="1,20",
                      help="first-layer pre-activations to trace (default %(default)s)")
    walk.add_argument("--dtype", choices=DTYPES, default="float32")
    walk.set_defaults(run=cmd_trace)

    hlo = commands.add_parser("hlo", help="compare the XLA programs of jax_manual and jax_autodiff")
    add_problem_options(hlo)
    hlo.add_argument("--dtype", choices=DTYPES, default="float32")
    hlo.set_defaults(run=cmd_hlo)

    versus = commands.add_parser("compare", help="what got faster or slower between two runs")
    versus.add_argument("run_a", nargs="?", help="the earlier run, the baseline (default: the "
                        "second newest in results/)")
    versus.add_argument("run_b", nargs="?", help="the later run (default: the newest)")
    versus.add_argument("--fail-above", type=non_negative_float, default=None, metavar="PCT",
                        help="exit 1 when a case is significantly slower by more than PCT percent")
    versus.add_argument("--output", default=None,
                        help="folder for compare.md and compare.csv (default: beside RUN_A)")
    versus.set_defaults(run=cmd_compare)

    rebuild = commands.add_parser("report", help="rebuild report.md and plots of a run")
    rebuild.add_argument("run_dir")
    rebuild.set_defaults(run=cmd_report)
    return parser


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the program the way Ctrl-C does (python -m bench calls this)."""
    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if argv is not None:
            args.argv = list(argv)
        return args.run(args)
    except (UsageError, DeviceUnavailable) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
