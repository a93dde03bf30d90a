"""Comparing two runs: what got faster or slower, and whether the change is real or noise.

    python -m bench compare results/RUN_A results/RUN_B [--fail-above 5]

For every implementation x case x dtype x device x thread count in either run: the ratio of the
medians (B / A, above 1: B is slower) and a verdict from the raw rounds of both runs (every
round's time, from pytest-benchmark, is in the runs' records):

* the Mann-Whitney U test (two-sided, scipy) asks whether B's rounds come from a slower or
  faster distribution than A's; it assumes nothing of their shape, which timing rounds (skewed,
  with outliers) need;
* a change is ``slower`` or ``faster`` only when the test's p-value is under ALPHA, the medians
  differ by more than MIN_CHANGE (10%), *and* the two runs' interquartile ranges do not overlap;
  otherwise ``same``. With thousands of rounds the test alone calls any drift of the machine
  between two runs significant; the size and the overlap keep a noisy measurement (its rounds
  spread over more than the change) from passing for a change;
* ``only in A`` / ``only in B`` when a case ran in one run alone.

``--fail-above PCT`` exits 1 when any row is ``slower`` by more than PCT percent: a regression
gate for CI. Runs from different machines, library versions or settings are compared with a
warning that names each difference (from ``env.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

ALPHA = 0.01  # p-value under which a difference in the rounds is taken as real
# And the medians must differ by more than this to count as a change. Rounds within one run
# share the machine's state of the moment; two runs do not, and on the project's shared 2-core
# machines back-to-back runs of unchanged code differ by up to about 6% on millisecond cases
# and 10% on the noisiest sub-millisecond ones (README, "A walk through"), with p-values far
# below ALPHA.
MIN_CHANGE = 0.10
KEYS = ["impl", "case", "dtype", "device", "threads"]
# env.json fields whose difference makes two runs less comparable.
_ENV_FIELDS = ["cpu", "cores", "platform", "matmul_precision", "XLA_FLAGS", "steps", "max_time_s"]
_VERSION_FIELDS = ["jax", "jaxlib", "torch", "numpy", "python", "jax_devices", "torch_gpu"]


class CompareError(ValueError):
    """A directory that is not a complete run."""


def load_rounds(run_dir: Path) -> pd.DataFrame:
    """One row per timed gradient benchmark: its keys and its raw per-evaluation round times."""
    if not (run_dir / "env.json").exists() or not list(run_dir.glob("records-*.jsonl")):
        raise CompareError(f"{str(run_dir)!r} is not a complete run directory "
                           "(no env.json or records-*.jsonl in it)")
    rows = []
    for path in sorted(run_dir.glob("records-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if "impl" not in record or not record.get("stats", {}).get("data"):
                continue  # a machine probe, a paired record, or a benchmark that failed
            rows.append({**{k: record.get(k) for k in KEYS},
                         "rounds": np.asarray(record["stats"]["data"], float) / record.get("steps", 1)})
    return pd.DataFrame(rows, columns=KEYS + ["rounds"])


def environment_differences(run_a: Path, run_b: Path) -> list[str]:
    """One line per setting or version in which the two runs differ."""
    env_a, env_b = (json.loads((run / "env.json").read_text()) for run in (run_a, run_b))
    lines = [f"{key}: {env_a.get(key)!r} in A, {env_b.get(key)!r} in B"
             for key in _ENV_FIELDS if env_a.get(key) != env_b.get(key)]

    def versions(env):
        merged = {}
        for facts in env.get("frameworks", {}).values():
            merged.update({k: facts[k] for k in _VERSION_FIELDS if k in facts})
        return merged

    version_a, version_b = versions(env_a), versions(env_b)
    lines += [f"{key}: {version_a.get(key)!r} in A, {version_b.get(key)!r} in B"
              for key in _VERSION_FIELDS if version_a.get(key) != version_b.get(key)]
    if env_a.get("git_commit") != env_b.get("git_commit"):
        lines.append(f"commit: {str(env_a.get('git_commit'))[:12]} in A, "
                     f"{str(env_b.get('git_commit'))[:12]} in B")
    return lines


def verdict(rounds_a: np.ndarray, rounds_b: np.ndarray) -> tuple[float, float, str]:
    """``(median ratio B / A, p-value, verdict)`` for two samples of round times."""
    q1_a, median_a, q3_a = np.percentile(rounds_a, [25, 50, 75])
    q1_b, median_b, q3_b = np.percentile(rounds_b, [25, 50, 75])
    ratio = float(median_b / median_a)
    p_value = float(mannwhitneyu(rounds_a, rounds_b, alternative="two-sided").pvalue)
    apart = q1_b > q3_a or q1_a > q3_b
    if p_value < ALPHA and abs(ratio - 1) > MIN_CHANGE and apart:
        return ratio, p_value, "slower" if ratio > 1 else "faster"
    return ratio, p_value, "same"


def compare_runs(run_a: Path, run_b: Path) -> pd.DataFrame:
    a, b = load_rounds(run_a), load_rounds(run_b)
    merged = a.merge(b, on=KEYS, how="outer", suffixes=("_a", "_b"), indicator=True)
    rows = []
    for row in merged.to_dict(orient="records"):
        keys = {k: row[k] for k in KEYS}
        if row["_merge"] != "both":
            rows.append({**keys, "verdict": "only in A" if row["_merge"] == "left_only" else "only in B"})
            continue
        rounds_a, rounds_b = row["rounds_a"], row["rounds_b"]
        ratio, p_value, word = verdict(rounds_a, rounds_b)
        rows.append({**keys, "median_a_s": float(np.median(rounds_a)),
                     "median_b_s": float(np.median(rounds_b)), "ratio": ratio,
                     "change_pct": 100 * (ratio - 1), "p_value": p_value,
                     "rounds_a": len(rounds_a), "rounds_b": len(rounds_b), "verdict": word})
    columns = KEYS + ["median_a_s", "median_b_s", "ratio", "change_pct", "p_value", "rounds_a",
                      "rounds_b", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def regressions(table: pd.DataFrame, fail_above_pct: float) -> pd.DataFrame:
    """Rows that are ``slower`` by more than ``fail_above_pct`` percent."""
    return table[(table["verdict"] == "slower") & (table["change_pct"] > fail_above_pct)]


def markdown(table: pd.DataFrame, run_a: Path, run_b: Path, warnings: list[str]) -> str:
    from bench.report import format_time

    shown = table.assign(
        median_a=table["median_a_s"].map(format_time),
        median_b=table["median_b_s"].map(format_time),
        change=table["change_pct"].map(lambda v: "-" if pd.isna(v) else f"{v:+.1f}%"),
        p=table["p_value"].map(lambda v: "-" if pd.isna(v) else f"{v:.2g}"),
    )[KEYS + ["median_a", "median_b", "change", "p", "verdict"]]
    counts = table["verdict"].value_counts()
    lines = [f"# {run_b.name} against {run_a.name}", "",
             f"B / A per implementation and case: Mann-Whitney U on the raw rounds; a change counts "
             f"when p < {ALPHA}, the medians differ by more than {MIN_CHANGE:.0%} and the "
             "interquartile ranges do not overlap.", ""]
    if warnings:
        lines += ["**Warning: the runs differ in**", ""] + [f"- {w}" for w in warnings] + [""]
    lines += [", ".join(f"{n} {word}" for word, n in counts.items()) + ".", "",
              shown.to_markdown(index=False), ""]
    return "\n".join(lines)
