"""Reports of a run: tidy CSVs, a markdown report with plots, from the workers' raw records.

    python -m bench report results/latest      # rebuild report.md and the plots from the files

Inputs (written by the workers): ``records-*.jsonl``, one line per benchmark as it finishes
(compile time, agreement, errors, and pytest-benchmark's statistics with every round), so that
nothing finished is lost if a worker dies later. The workers also leave pytest-benchmark's own
JSON (``benchmark-*.json``, with machine and commit info) for its users' tools.
Outputs: ``results.csv``, ``agreement.csv``, ``report.md``, ``time_vs_flops.png``,
``speedup.png``. Every file and column is explained in results/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# A measurement whose interquartile range exceeds this share of its median is flagged as noisy:
# its rounds disagree by more than the differences a reader would act on.
NOISE_THRESHOLD = 0.10
# A paired median ratio jax_manual / jax_autodiff above this counts as "slower": 2% is about the
# spread of the ratio on the project's 2-core machines, below which a difference is not a finding.
PAIRED_SLOWER = 1.02
CASE_KEYS = ["case", "sizes", "batch", "dtype", "device"]
RESULT_COLUMNS = ["run_id", "impl", "framework", "device", "dtype", "case", "sizes", "batch",
                  "threads", "steps", "n_params", "flops", "compile_s", "median_s", "iqr_s",
                  "min_s", "mean_s", "stddev_s", "rounds", "iterations", "gflops", "agrees",
                  "max_abs_err", "norm_rel_err", "err_ratio", "numerics", "noisy", "error"]
# Added after RESULT_COLUMNS: best_threads, ceiling_gflops, floor_s, pct_of_ceiling, regime,
# speedup_vs_<impl>.


def _read_records(run_dir: Path) -> list[dict]:
    records = []
    for path in sorted(run_dir.glob("records-*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


@dataclass(frozen=True)
class Tables:
    """Everything a report is made of, as tidy tables (their columns: results/README.md)."""

    results: pd.DataFrame  # one row per implementation x case x dtype x device
    agreement: pd.DataFrame  # one row per implementation x case x tensor
    machine: pd.DataFrame  # one row per framework x device x probe (ceiling, floor)
    paired: pd.DataFrame  # one row per case: jax_manual / jax_autodiff in interleaved pairs


def regime(flops: float, ceiling_flops_per_s: float, floor_s: float) -> str:
    """``compute-bound`` when the call's matrix products, run at the ceiling, take longer than
    the dispatch floor; ``overhead-bound`` when even at the ceiling they would finish sooner than
    the cheapest possible call. Unknown (empty) without both measurements."""
    if not (ceiling_flops_per_s > 0 and floor_s > 0):
        return ""
    return "compute-bound" if flops / ceiling_flops_per_s >= floor_s else "overhead-bound"


def _statistics(measured: dict, steps: int = 1) -> dict:
    """pytest-benchmark's statistics of one call, per gradient evaluation (a call runs ``steps``)."""
    return {"median_s": measured["median"] / steps, "iqr_s": measured["iqr"] / steps,
            "min_s": measured["min"] / steps, "mean_s": measured["mean"] / steps,
            "stddev_s": measured["stddev"] / steps,
            "rounds": measured["rounds"], "iterations": measured["iterations"],
            "noisy": measured["iqr"] / measured["median"] > NOISE_THRESHOLD}


def build_tables(run_dir: Path) -> Tables:
    """The tables of a run, from its raw files."""
    records = _read_records(run_dir)
    env_path = run_dir / "env.json"
    run_id = json.loads(env_path.read_text())["run_id"] if env_path.exists() else run_dir.name
    rows, agreement, machine, paired = [], [], [], []
    for record in records:
        kind = record.get("kind", "gradient")
        measured = record.get("stats")
        if kind == "paired":
            paired.append({k: v for k, v in record.items() if k not in ("a_s", "b_s", "kind", "name")})
            continue
        if kind in ("ceiling", "floor"):
            row = {"framework": record["framework"], "device": record["device"],
                   "threads": record.get("threads"), "probe": kind, "error": record["error"]}
            if measured:
                row.update(_statistics(measured))
                row["gflops"] = record["flops"] / measured["median"] / 1e9 if kind == "ceiling" else None
            machine.append(row)
            continue
        row = {key: record.get(key) for key in RESULT_COLUMNS}
        row["run_id"] = run_id
        row["steps"] = steps = record.get("steps", 1)
        if measured:
            row.update(_statistics(measured, steps))
            row["gflops"] = record["flops"] / row["median_s"] / 1e9
        elif not record.get("error"):
            row["error"] = "no timing recorded"
        rows.append(row)
        for tensor in record.get("agreement", []):
            agreement.append({"run_id": run_id, "impl": record["impl"],
                              **{k: record[k] for k in CASE_KEYS}, **tensor})
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    results["error"] = results["error"].fillna("")
    machine = pd.DataFrame(machine, columns=["framework", "device", "threads", "probe", "median_s", "iqr_s",
                                             "min_s", "mean_s", "stddev_s", "rounds",
                                             "iterations", "noisy", "gflops", "error"])
    # With a thread sweep, each implementation is compared at its own best thread count.
    fastest = results.groupby(["impl"] + CASE_KEYS, dropna=False)["median_s"].transform("min")
    results["best_threads"] = results["median_s"].notna() & (results["median_s"] == fastest)
    _add_roofline_columns(results, machine)
    best = results[results["best_threads"]].set_index(["impl"] + CASE_KEYS)["median_s"]
    for impl in results["impl"].unique():
        theirs = best.xs(impl, level="impl") if impl in best.index.get_level_values("impl") else None
        mine = results.set_index(CASE_KEYS)["median_s"]
        speedup = (theirs.reindex(mine.index) / mine).to_numpy() if theirs is not None else float("nan")
        results[f"speedup_vs_{impl}"] = speedup
        results.loc[~results["best_threads"], f"speedup_vs_{impl}"] = float("nan")
    return Tables(results, pd.DataFrame(agreement), machine,
                  pd.DataFrame(paired, columns=PAIRED_COLUMNS))


PAIRED_COLUMNS = ["a", "b", "case", "sizes", "batch", "dtype", "device", "threads", "median_ratio",
                  "q1", "q3", "pairs", "iterations", "error"]


def _add_roofline_columns(results: pd.DataFrame, machine: pd.DataFrame) -> None:
    """ceiling_gflops, pct_of_ceiling, floor_s and regime for every result row, in place."""
    probe = machine.set_index(["framework", "device", "threads", "probe"])

    def lookup(framework, device, threads, kind, column):
        key = (framework, device, threads, kind)
        return probe.loc[key, column] if key in probe.index else float("nan")

    keys = list(zip(results["framework"], results["device"], results["threads"]))
    results["ceiling_gflops"] = [lookup(f, d, t, "ceiling", "gflops") for f, d, t in keys]
    results["floor_s"] = [lookup(f, d, t, "floor", "median_s") for f, d, t in keys]
    results["pct_of_ceiling"] = 100 * results["gflops"] / results["ceiling_gflops"]
    results["regime"] = [regime(flops, ceiling * 1e9, floor) for flops, ceiling, floor in
                         zip(results["flops"], results["ceiling_gflops"], results["floor_s"])]


def format_time(seconds) -> str:
    if pd.isna(seconds):
        return "-"
    for unit, factor in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _median_table(results: pd.DataFrame) -> str:
    """Case x implementation medians, the fastest of each row in bold, noisy ones marked ~."""
    timed = results.dropna(subset=["median_s"])
    lines = []
    impls = list(dict.fromkeys(timed["impl"]))
    lines.append("| case | dtype | device | " + " | ".join(impls) + " |")
    lines.append("|---|---|---|" + "---:|" * len(impls))
    for (case, dtype, device), group in timed.groupby(["case", "dtype", "device"], sort=False):
        by_impl = group.set_index("impl")
        fastest = by_impl["median_s"].idxmin()
        cells = []
        for impl in impls:
            if impl not in by_impl.index:
                cells.append("-")
                continue
            text = format_time(by_impl.loc[impl, "median_s"])
            text += " ~" if by_impl.loc[impl, "noisy"] else ""
            cells.append(f"**{text}**" if impl == fastest else text)
        lines.append(f"| {case} | {dtype} | {device} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _speedup_table(results: pd.DataFrame, baseline: str) -> str:
    column = f"speedup_vs_{baseline}"
    table = results.dropna(subset=["median_s"]).pivot_table(
        index=["case", "dtype", "device"], columns="impl", values=column, sort=False)
    return table.map(lambda v: f"{v:.2f}x").reset_index().to_markdown(index=False)


def _plots(results: pd.DataFrame, run_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = results.dropna(subset=["median_s"])
    if timed.empty:
        return []
    fig, ax = plt.subplots(figsize=(7, 5))
    for (impl, dtype, device), group in timed.groupby(["impl", "dtype", "device"]):
        group = group.sort_values("flops")
        ax.plot(group["flops"], group["median_s"], marker="o", linewidth=0.8, alpha=0.85,
                label=f"{impl} ({dtype}, {device})")
    _save_loglog(fig, ax, run_dir / "time_vs_flops.png", "Time against problem size",
                 "flops per call (6 x batch x sum(d_in x d_out))", "median time per call (s)")

    baseline = "torch_autograd" if "torch_autograd" in set(timed["impl"]) else timed["impl"].iloc[0]
    labelled = timed.assign(label=timed["case"] + " " + timed["dtype"] + " " + timed["device"])
    table = labelled.pivot_table(index="label", columns="impl", values=f"speedup_vs_{baseline}",
                                 sort=False)
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(table) + 2))
    table.plot.barh(ax=ax)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"speedup over {baseline}: its median / this median (> 1 is faster)")
    ax.set_ylabel("")
    ax.invert_yaxis()
    ax.set_title("Speedup per case")
    fig.tight_layout()
    fig.savefig(run_dir / "speedup.png", dpi=110)
    plt.close(fig)
    return ["time_vs_flops.png", "speedup.png"]


def _roofline(tables: Tables, run_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    timed = tables.results.dropna(subset=["gflops"])
    probes = tables.machine.dropna(subset=["median_s"])
    if timed.empty or probes.empty:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 5))
    span = np.logspace(np.log10(timed["flops"].min() / 3), np.log10(timed["flops"].max() * 3), 50)
    styles = {"jax": "tab:blue", "torch": "tab:red"}
    for (framework, device), group in probes.groupby(["framework", "device"]):
        color = styles.get(framework, "gray")
        ceiling = group.loc[group["probe"] == "ceiling", "gflops"]
        floor = group.loc[group["probe"] == "floor", "median_s"]
        if len(ceiling):
            ax.axhline(ceiling.iloc[0], color=color, linestyle="--", linewidth=1,
                       label=f"{framework} {device} ceiling")
        if len(floor):
            ax.plot(span, span / floor.iloc[0] / 1e9, color=color, linestyle=":", linewidth=1,
                    label=f"{framework} {device} floor (flops / floor time)")
    markers = dict(zip(timed["impl"].unique(), "osD^v<>"))
    for (impl, device), group in timed.groupby(["impl", "device"]):
        ax.scatter(group["flops"], group["gflops"], marker=markers[impl], s=40, zorder=3,
                   label=f"{impl} ({device})")
    _save_loglog(fig, ax, run_dir / "roofline.png",
                 "Roofline: each call is held under its framework's ceiling and floor lines",
                 "flops per call", "achieved GFLOP/s")
    return ["roofline.png"]


def _save_loglog(fig, ax, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    import matplotlib.pyplot as plt

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _environment(env: dict) -> str:
    lines = [f"- run: `{env.get('run_id', '?')}`, started {env.get('started', '?')}, "
             f"finished {env.get('finished', '?')}",
             f"- command: `{env.get('command', '?')}`",
             f"- commit: `{env.get('git_commit', '?')}`" + (" (dirty tree)" if env.get("git_dirty") else ""),
             f"- CPU: {env.get('cpu', '?')}; threads per framework: "
             f"{', '.join(map(str, env.get('threads', []))) or '?'} "
             f"(CPU affinity, OMP_NUM_THREADS, torch.set_num_threads)",
             f"- float32 matmul precision: {env.get('matmul_precision', '?')}",
             f"- XLA_FLAGS: `{env.get('XLA_FLAGS') or ''}`"]
    for framework, facts in env.get("frameworks", {}).items():
        shown = ", ".join(f"{k} {v}" for k, v in facts.items() if k not in ("affinity",))
        lines.append(f"- {framework}: {shown}")
    return "\n".join(lines)


def _machine_section(tables: Tables) -> list[str]:
    machine, results = tables.machine, tables.results
    timed = results[results["best_threads"]]
    if machine.dropna(subset=["median_s"]).empty:
        return []
    probes = machine.dropna(subset=["median_s"])
    ceilings = probes[probes["probe"] == "ceiling"].set_index(["framework", "device", "threads"])
    floors = probes[probes["probe"] == "floor"].set_index(["framework", "device", "threads"])
    table = pd.DataFrame({
        "ceiling (float32 matmul)": ceilings["gflops"].map(lambda v: f"{v:.1f} GFLOP/s"),
        "floor (cheapest synced call)": floors["median_s"].map(format_time)}).reset_index()
    per_case = timed.assign(
        gflops=timed["gflops"].map(lambda v: f"{v:.3g}"),
        pct_of_ceiling=timed["pct_of_ceiling"].map(lambda v: f"{v:.0f}%"),
    )[["case", "dtype", "device", "impl", "threads", "gflops", "pct_of_ceiling", "regime"]]
    return ["## Against the machine: ceilings, floors, GFLOP/s, regimes", "",
            "Measured in the same run and worker as the gradients. The ceiling is a float32 "
            "(n, n) @ (n, n) product (n = 1024 on a CPU, 8192 on a GPU); the floor is the cheapest "
            "call that dispatches and waits (JAX: a jitted identity; torch: one add on one float). "
            "GFLOP/s count 6 x batch x sum(d_in x d_out) flops per call (the matrix products of "
            "forward and backward). A case is *compute-bound* when its products, run at the "
            "ceiling, would take longer than the floor, and *overhead-bound* otherwise.", "",
            table.to_markdown(index=False), "", per_case.to_markdown(index=False), ""]


def _thread_section(results: pd.DataFrame) -> list[str]:
    """With a thread sweep: each implementation's median per thread count, its best in bold."""
    timed = results.dropna(subset=["median_s"])
    counts = sorted(timed["threads"].unique())
    if len(counts) < 2:
        return []
    rows = []
    for (case, dtype, device, impl), group in timed.groupby(["case", "dtype", "device", "impl"],
                                                             sort=False):
        by = group.set_index("threads")
        cells = {f"threads={n}": (f"**{format_time(by.loc[n, 'median_s'])}**" if by.loc[n, "best_threads"]
                                  else format_time(by.loc[n, "median_s"])) if n in by.index else "-"
                 for n in counts}
        rows.append({"case": case, "dtype": dtype, "device": device, "impl": impl, **cells})
    return ["## Thread sweep", "",
            "Median per gradient evaluation at each thread count; **bold** is the implementation's "
            "best, and every other table of this report compares each implementation at its best.",
            "", pd.DataFrame(rows).to_markdown(index=False), ""]


def _paired_section(paired: pd.DataFrame) -> list[str]:
    done = paired[paired["error"].fillna("") == ""]
    if done.empty:
        return []
    shown = done.assign(ratio=[f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                               zip(done["median_ratio"], done["q1"], done["q3"])],
                        samples=[f"{int(p)} x {int(i)}" for p, i in zip(done["pairs"], done["iterations"])])
    slower = done[done["median_ratio"] > PAIRED_SLOWER]
    verdict = (f"jax_manual is slower than jax_autodiff (ratio above {PAIRED_SLOWER}) on "
               f"{len(slower)} of {len(done)} cases"
               + (": " + ", ".join(slower["case"]) if len(slower) else "")
               + ".")
    return ["## jax_manual against jax_autodiff, paired", "",
            "Interleaved pairs (A B, B A, ...), each block at least 1 ms, so both meet the same "
            "machine; the median of the per-pair time ratios jax_manual / jax_autodiff, with "
            "quartiles. Below 1: the hand-written pass is faster.", "",
            shown[["case", "dtype", "device", "ratio", "samples"]]
            .rename(columns={"ratio": "median ratio [q1, q3]", "samples": "pairs x calls"})
            .to_markdown(index=False), "", verdict, ""]


def write_report(run_dir: Path) -> Tables:
    """Build every report file of ``run_dir`` from its raw files; return the tables."""
    tables = build_tables(run_dir)
    results = tables.results
    results.to_csv(run_dir / "results.csv", index=False)
    tables.agreement.to_csv(run_dir / "agreement.csv", index=False)
    tables.machine.to_csv(run_dir / "machine.csv", index=False)
    tables.paired.to_csv(run_dir / "paired.csv", index=False)
    env_path = run_dir / "env.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    # Each implementation at its best thread count (all of them, without a thread sweep).
    best = results[results["best_threads"] | results["median_s"].isna()]
    pictures = _plots(best, run_dir) + _roofline(tables, run_dir)

    timed = results[results["best_threads"]]
    failed = results[(results["error"] != "") & ~results["error"].str.startswith("skipped")]
    skipped = results[results["error"].str.startswith("skipped")]
    disagree = results[results["agrees"] == False]  # noqa: E712 (NaN for failed rows)
    noisy = timed[timed["noisy"] == True]  # noqa: E712

    parts = [f"# Benchmark run {env.get('run_id', run_dir.name)}", "", _environment(env), ""]
    if failed.empty and disagree.empty:
        parts.append(f"**All {timed['impl'].nunique()} implementations agreed with the float64 "
                     f"oracle on every case, and nothing failed.**")
    else:
        parts.append("**Problems in this run:**")
        parts += [f"- {r.impl} on {r.case} {r.dtype} {r.device}: DISAGREES with the oracle "
                  f"(largest err_ratio {r.err_ratio:.3g})"
                  + (f": {r.numerics}" if isinstance(r.numerics, str) and r.numerics else "")
                  for r in disagree.itertuples()]
        parts += [f"- {r.impl} on {r.case} {r.dtype} {r.device}: FAILED: {r.error}"
                  for r in failed.itertuples()]
    parts += ["", "## Median time per call", "",
              "Steady state, after the first call and warm-up; **bold** is the fastest of its row; "
              f"~ marks a noisy measurement (IQR over {NOISE_THRESHOLD:.0%} of the median).", "",
              _median_table(best), ""]
    steps = sorted(set(timed["steps"]))
    if steps and steps != [1]:
        parts += [f"Steps per call: {', '.join(map(str, steps))}. Every figure is per gradient "
                  "evaluation: a call's time divided by its steps.", ""]
    parts += _thread_section(results)
    for baseline in dict.fromkeys(timed["impl"]):
        parts += [f"## Speedup over {baseline}", "",
                  f"{baseline}'s median divided by each implementation's: above 1 is faster.", "",
                  _speedup_table(best, baseline), ""]
    parts += _machine_section(tables) + _paired_section(tables.paired)
    parts += ["## First call (compile) time", "",
              "JAX: tracing and XLA compilation; torch: its first eager call. Not in the medians.", "",
              best.pivot_table(index=["case", "dtype", "device"], columns="impl",
                               values="compile_s", sort=False).map(format_time)
              .reset_index().to_markdown(index=False), ""]
    parts += ["## Agreement with the float64 oracle", "",
              "Largest `err_ratio` over the tensors of each case (the gate passes at <= 1; "
              "see README, 'Reading the agreement table').", "",
              best.pivot_table(index=["case", "dtype", "device"], columns="impl",
                               values="err_ratio", sort=False).map(lambda v: f"{v:.2g}")
              .reset_index().to_markdown(index=False), ""]
    parts += ["## Noise", ""]
    if noisy.empty:
        parts.append(f"No measurement had an IQR over {NOISE_THRESHOLD:.0%} of its median.")
    else:
        parts += [f"- {r.impl} on {r.case} {r.dtype} {r.device}: IQR {r.iqr_s / r.median_s:.0%} "
                  f"of the median over {r.rounds} rounds" for r in noisy.itertuples()]
    if not skipped.empty:
        parts += ["", "Skipped: " + "; ".join(sorted(set(skipped["error"].str.removeprefix("skipped: "))))]
    parts += ["", "## Plots", ""] + [f"![{p}]({p})" for p in pictures]
    if "diagnostics_exit_code" in env:
        parts += ["", "## The courier's journey", ""]
        if env["diagnostics_exit_code"] == 0:
            parts += ["Where the message dies under each init, on the diagnostics' default network: "
                      "[diagnostics/diagnostics.md](diagnostics/diagnostics.md).", "",
                      "![courier](diagnostics/courier.png)"]
        else:
            parts.append(f"FAILED (exit code {env['diagnostics_exit_code']}): see diagnose.log.")
    (run_dir / "report.md").write_text("\n".join(parts) + "\n")
    return tables


def summary_table(results: pd.DataFrame) -> str:
    """The short table printed at the end of a run: each implementation at its best threads."""
    return _median_table(results[results["best_threads"].astype(bool)])
