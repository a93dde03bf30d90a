"""Reports of a run: tidy CSVs, a markdown report with plots, from the workers' raw records.

    python -m bench report results/latest      # rebuild report.md and the plots from the files

Inputs (written by the workers): ``records-*.jsonl`` (compile time, agreement, errors) and
``benchmark-*.json`` (pytest-benchmark's own JSON: statistics, raw rounds, machine and commit).
Outputs: ``results.csv``, ``agreement.csv``, ``report.md``, ``time_vs_flops.png``,
``speedup.png``. Every file and column is explained in results/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# A measurement whose interquartile range exceeds this share of its median is flagged as noisy:
# its rounds disagree by more than the differences a reader would act on.
NOISE_THRESHOLD = 0.10
CASE_KEYS = ["case", "sizes", "batch", "dtype", "device"]
RESULT_COLUMNS = ["run_id", "impl", "framework", "device", "dtype", "case", "sizes", "batch",
                  "n_params", "flops", "compile_s", "median_s", "iqr_s", "min_s", "mean_s",
                  "stddev_s", "rounds", "iterations", "gflops", "agrees", "max_abs_err",
                  "norm_rel_err", "err_ratio", "noisy", "error"]


def _read_records(run_dir: Path) -> list[dict]:
    records = []
    for path in sorted(run_dir.glob("records-*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def _read_stats(run_dir: Path) -> dict[str, dict]:
    stats = {}
    for path in sorted(run_dir.glob("benchmark-*.json")):
        for bench in json.loads(path.read_text())["benchmarks"]:
            stats[bench["param"]] = bench["stats"]
    return stats


def build_tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, agreement)`` from a run directory's raw files."""
    records, stats = _read_records(run_dir), _read_stats(run_dir)
    env_path = run_dir / "env.json"
    run_id = json.loads(env_path.read_text())["run_id"] if env_path.exists() else run_dir.name
    rows, agreement = [], []
    for record in records:
        row = {key: record.get(key) for key in RESULT_COLUMNS}
        row["run_id"] = run_id
        measured = stats.get(record["name"])
        if measured:
            row.update(median_s=measured["median"], iqr_s=measured["iqr"], min_s=measured["min"],
                       mean_s=measured["mean"], stddev_s=measured["stddev"],
                       rounds=measured["rounds"], iterations=measured["iterations"])
            row["gflops"] = record["flops"] / measured["median"] / 1e9
            row["noisy"] = measured["iqr"] / measured["median"] > NOISE_THRESHOLD
        elif not record.get("error"):
            row["error"] = "no timing recorded"
        rows.append(row)
        for tensor in record.get("agreement", []):
            agreement.append({"run_id": run_id, "impl": record["impl"],
                              **{k: record[k] for k in CASE_KEYS}, **tensor})
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    results["error"] = results["error"].fillna("")
    for impl in results["impl"].unique():
        theirs = results[results["impl"] == impl].set_index(CASE_KEYS)["median_s"]
        mine = results.set_index(CASE_KEYS)["median_s"]
        results[f"speedup_vs_{impl}"] = (theirs.reindex(mine.index) / mine).to_numpy()
    return results, pd.DataFrame(agreement)


def _fmt_time(seconds) -> str:
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
            text = _fmt_time(by_impl.loc[impl, "median_s"])
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
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("flops per call (6 x batch x sum(d_in x d_out))")
    ax.set_ylabel("median time per call (s)")
    ax.set_title("Time against problem size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run_dir / "time_vs_flops.png", dpi=110)
    plt.close(fig)

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


def _environment(env: dict) -> str:
    lines = [f"- run: `{env.get('run_id', '?')}`, started {env.get('started', '?')}, "
             f"finished {env.get('finished', '?')}",
             f"- command: `{env.get('command', '?')}`",
             f"- commit: `{env.get('git_commit', '?')}`" + (" (dirty tree)" if env.get("git_dirty") else ""),
             f"- CPU: {env.get('cpu', '?')}; threads per framework: {env.get('threads', '?')} "
             f"(CPU affinity, OMP_NUM_THREADS, torch.set_num_threads)",
             f"- float32 matmul precision: {env.get('matmul_precision', '?')}",
             f"- XLA_FLAGS: `{env.get('XLA_FLAGS') or ''}`"]
    for framework, facts in env.get("frameworks", {}).items():
        shown = ", ".join(f"{k} {v}" for k, v in facts.items() if k not in ("affinity",))
        lines.append(f"- {framework}: {shown}")
    return "\n".join(lines)


def write_report(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build every report file of ``run_dir`` from its raw files; return the two tables."""
    results, agreement = build_tables(run_dir)
    results.to_csv(run_dir / "results.csv", index=False)
    agreement.to_csv(run_dir / "agreement.csv", index=False)
    env_path = run_dir / "env.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    pictures = _plots(results, run_dir)

    timed = results.dropna(subset=["median_s"])
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
                  f"(largest err_ratio {r.err_ratio:.3g})" for r in disagree.itertuples()]
        parts += [f"- {r.impl} on {r.case} {r.dtype} {r.device}: FAILED: {r.error}"
                  for r in failed.itertuples()]
    parts += ["", "## Median time per call", "",
              "Steady state, after the first call and warm-up; **bold** is the fastest of its row; "
              f"~ marks a noisy measurement (IQR over {NOISE_THRESHOLD:.0%} of the median).", "",
              _median_table(results), ""]
    for baseline in dict.fromkeys(timed["impl"]):
        parts += [f"## Speedup over {baseline}", "",
                  f"{baseline}'s median divided by each implementation's: above 1 is faster.", "",
                  _speedup_table(results, baseline), ""]
    parts += ["## First call (compile) time", "",
              "JAX: tracing and XLA compilation; torch: its first eager call. Not in the medians.", "",
              results.pivot_table(index=["case", "dtype", "device"], columns="impl",
                                  values="compile_s", sort=False).map(_fmt_time)
              .reset_index().to_markdown(index=False), ""]
    parts += ["## Agreement with the float64 oracle", "",
              "Largest `err_ratio` over the tensors of each case (the gate passes at <= 1; "
              "see README, 'Reading the agreement table').", "",
              results.pivot_table(index=["case", "dtype", "device"], columns="impl",
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
    return results, agreement


def summary_table(results: pd.DataFrame) -> str:
    """The short table printed at the end of a run."""
    return _median_table(results)
