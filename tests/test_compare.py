"""Comparing runs: verdicts on runs with known differences, the regression gate, the warnings."""

import json
import time

import numpy as np
import pytest

from bench.cli import main
from bench.compare import compare_runs, environment_differences, verdict
from impls import REGISTRY, Problem, make_inputs


def write_run(run_dir, cases: dict, env_extra=None):
    """A run directory holding ``{case: rounds in seconds}`` for one implementation."""
    run_dir.mkdir(parents=True)
    env = {"run_id": run_dir.name, "cpu": "the same CPU", "matmul_precision": "highest",
           "frameworks": {"jax-t2": {"jax": "0.10.2", "numpy": "2.4.6"}}, **(env_extra or {})}
    (run_dir / "env.json").write_text(json.dumps(env))
    records = [{"name": case, "impl": "jax_manual", "case": case, "dtype": "float32",
                "device": "cpu", "threads": 2, "steps": 1, "stats": {"data": list(rounds)}}
               for case, rounds in cases.items()]
    (run_dir / "records-jax-t2.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    return run_dir


@pytest.fixture
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    base = lambda scale: 1e-3 * scale * (1 + 0.02 * rng.standard_normal(300))  # noqa: E731
    run_a = write_run(tmp_path / "a", {"regressed": base(1.0), "steady": base(1.0),
                                       "dropped": base(1.0)})
    run_b = write_run(tmp_path / "b", {"regressed": base(1.5), "steady": base(1.0)},
                      env_extra={"frameworks": {"jax-t2": {"jax": "0.10.3", "numpy": "2.4.6"}}})
    return run_a, run_b


def test_known_differences_get_the_right_verdicts(two_runs):
    table = compare_runs(*two_runs).set_index("case")
    assert table.loc["regressed", "verdict"] == "slower"
    assert table.loc["regressed", "change_pct"] == pytest.approx(50, abs=2)
    assert table.loc["regressed", "p_value"] < 1e-10
    assert table.loc["steady", "verdict"] == "same"
    assert table.loc["dropped", "verdict"] == "only in A"


def test_environment_differences_are_named(two_runs):
    assert environment_differences(*two_runs) == ["jax: '0.10.2' in A, '0.10.3' in B"]


@pytest.mark.parametrize("fail_above, expected", [(20, 1), (60, 0)], ids=["gate-trips", "gate-holds"])
def test_fail_above_sets_the_exit_code(two_runs, tmp_path, capsys, fail_above, expected):
    run_a, run_b = two_runs
    code = main(["compare", str(run_a), str(run_b), "--fail-above", str(fail_above),
                 "--output", str(tmp_path / "cmp")])
    out, err = capsys.readouterr()
    assert code == expected
    row = next(line for line in out.splitlines() if "| regressed" in line)
    assert "slower" in row and "+5" in row  # +50%
    assert "warning: runs differ in jax: '0.10.2' in A, '0.10.3' in B" in err
    assert (tmp_path / "cmp" / "compare.csv").exists() and (tmp_path / "cmp" / "compare.md").exists()
    assert ("REGRESSION" in err) == (expected == 1)


def test_verdict_needs_both_significance_and_size():
    rng = np.random.default_rng(1)
    a = 1e-3 * (1 + 0.001 * rng.standard_normal(5000))
    assert verdict(a, a * 1.02)[2] == "same"  # significant, but 2% is within run-to-run drift
    assert verdict(a, a * 1.2)[2] == "slower"
    assert verdict(a, a / 1.2)[2] == "faster"
    # 12% apart, significant, but each run's rounds spread over +-20%: their IQRs overlap
    wide = 1e-3 * (1 + 0.3 * rng.standard_normal(5000))
    ratio, p_value, word = verdict(wide, wide * 1.12)
    assert ratio == pytest.approx(1.12) and p_value < 0.01 and word == "same"


def time_rounds(call, rounds=150):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return np.array(samples)


def test_a_deliberately_slowed_implementation_is_caught(tmp_path, capsys):
    params, x, y = make_inputs(Problem())
    prepared = REGISTRY["jax_manual"].prepare(params, x, y)
    honest = lambda: prepared.wait(prepared.run())  # noqa: E731

    def slowed():  # the same call, plus half a millisecond of waiting: test-only
        honest()
        time.sleep(5e-4)

    for _ in range(5):
        honest()
    run_a = write_run(tmp_path / "a", {"default": time_rounds(honest)})
    run_b = write_run(tmp_path / "b", {"default": time_rounds(slowed)})
    run_c = write_run(tmp_path / "c", {"default": time_rounds(honest)})
    assert main(["compare", str(run_a), str(run_b), "--fail-above", "10",
                 "--output", str(tmp_path / "ab")]) == 1
    assert main(["compare", str(run_a), str(run_c), "--fail-above", "10",
                 "--output", str(tmp_path / "ac")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("argv, fragment", [
    (["compare", "/nonexistent-a", "/nonexistent-b"], "is not a complete run directory"),
    (["compare", "/nonexistent-a"], "give two run directories, or none"),
    (["compare", "--fail-above", "-5", "a", "b"], "'-5' is not a finite number >= 0"),
], ids=["not-runs", "one-run", "negative-gate"])
def test_bad_compare_input(usage_error, argv, fragment):
    usage_error(argv, fragment)
