"""A run that survives crashes, hangs, interruptions, impossible cases and numerical faults."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.agreement import check, input_overflow, nonfinite_summary
from bench.cli import main
from bench.memory import case_bytes, refusal
from impls import REGISTRY, TIMED, Problem, make_inputs

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
ONE_CASE = ["--sizes", "8,4,1", "--batch", "4", "--device", "cpu", "--max-time", "0.05",
            "--no-diagnostics"]


@pytest.fixture
def plugin_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def fake_earlier_run(output: Path) -> Path:
    earlier = output / "20200101-000000-earlier"
    earlier.mkdir(parents=True)
    (earlier / "report.md").write_text("an earlier run\n")
    (output / "latest").symlink_to(earlier.name)
    return earlier


def test_failures_are_isolated_and_reported(tmp_path, capsys, plugin_path):
    output = tmp_path / "results"
    earlier = fake_earlier_run(output)
    code = main(["run", *ONE_CASE, "--plugin", "faulty_impls", "--case-timeout", "3",
                 "--impl", "numpy_reference,raises,crashes,hangs", "--output", str(output)])
    assert code == 1
    run_dir = (output / "latest").resolve()
    assert run_dir != earlier and (earlier / "report.md").exists()
    results = pd.read_csv(run_dir / "results.csv", keep_default_na=False).set_index("impl")
    assert results.loc["numpy_reference", "error"] == "" and results.loc["numpy_reference", "agrees"]
    assert results.loc["raises", "error"] == "RuntimeError: this implementation always fails"
    assert results.loc["crashes", "error"].startswith("crashed: killed by SIGSEGV")
    assert results.loc["hangs", "error"].startswith("timed out after 3 s")
    report = (run_dir / "report.md").read_text()
    for impl in ("raises", "crashes", "hangs"):
        assert f"- {impl} on 8-4-1_b4 float32 cpu: FAILED" in report
    err = capsys.readouterr().err
    assert "crashed: killed by SIGSEGV" in err and "a new worker goes on with the rest" in err


def test_oversized_case_is_refused_before_allocation(tmp_path, capsys):
    output = tmp_path / "results"
    config = tmp_path / "sweep.toml"
    config.write_text("[p]\nimpls = ['numpy_reference']\ndevices = ['cpu']\nmax_time = 0.05\n"
                      "cases = [{ sizes = [8, 4, 1], batch = 4 },\n"
                      "         { sizes = [100000, 100000, 1], batch = 10 }]\n")
    code = main(["run", "--config", str(config), "--preset", "p", "--no-diagnostics",
                 "--output", str(output)])
    assert code == 1
    results = pd.read_csv(output / "latest" / "results.csv", keep_default_na=False).set_index("case")
    assert results.loc["8-4-1_b4", "error"] == ""
    refused = results.loc["100000-100000-1_b10", "error"]
    assert refused.startswith("refused: needs about") and "GiB available" in refused
    assert "refused: needs about" in capsys.readouterr().err


def test_memory_estimate_by_hand():
    # sizes (3, 4, 2), batch 5, float32: params 26; data 5 x 5 = 25; activations 2 x 5 x 6 = 60;
    # messages 3 x 5 x 4 = 60. Timed: 4 x (52 + 25 + 60 + 60) x 2 = 1576.
    # Oracle: 8 x (52 + 25 + 60 + 60) x 3 = 4728.
    assert case_bytes(Problem(sizes=(3, 4, 2), batch=5), "float32") == 1576 + 4728
    assert refusal(Problem(sizes=(3, 4, 2), batch=5), "float32", 1, 10 ** 9) == ""
    assert refusal(Problem(sizes=(3, 4, 2), batch=5), "float32", 1, 100).startswith("refused")


def start_run(output: Path, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]))
    return subprocess.Popen([sys.executable, "-m", "bench", "run", "--plugin", "faulty_impls",
                             "--preset", "quick", "--impl", "slow", "--device", "cpu",
                             "--max-time", "0.5", "--no-diagnostics", "--output", str(output),
                             *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_first_record(output: Path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = list(output.glob(".tmp-*/records-*.jsonl"))
        if records and records[0].read_text().strip():
            return
        time.sleep(0.2)
    raise AssertionError("the run recorded nothing in time")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_keeps_earlier_runs_and_resume_completes(tmp_path, signum):
    output = tmp_path / "results"
    earlier = fake_earlier_run(output)
    run = start_run(output)
    wait_for_first_record(output)
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted during slow-" in err and "no run was written" in err
    assert (output / "latest").resolve() == earlier.resolve()
    assert not list(output.glob(".tmp-*"))
    [partial] = list(output.glob(".partial-*"))
    assert not [p for p in output.iterdir() if p.name[0].isdigit() and p != earlier]
    finished = {json.loads(line)["name"] for line in
                next(partial.glob("records-*.jsonl")).read_text().splitlines()}

    resumed = subprocess.run([sys.executable, "-m", "bench", "run", "--plugin", "faulty_impls",
                              "--resume", str(partial)], cwd=ROOT, capture_output=True, text=True,
                             check=False,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)])))
    assert resumed.returncode == 0, resumed.stderr
    run_dir = (output / "latest").resolve()
    assert run_dir.name == partial.name.removeprefix(".partial-")
    records = [json.loads(line) for line in next(run_dir.glob("records-*.jsonl")).read_text().splitlines()]
    names = [r["name"] for r in records]
    assert len(names) == len(set(names)) == 2  # both quick cases, none timed twice
    assert finished <= set(names)
    assert all(r["stats"]["rounds"] >= 5 for r in records)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_identical_inputs_and_agreement(dtype):
    problem = Problem(seed=11)
    first, second = make_inputs(problem), make_inputs(problem)
    for a, b in zip([t for pair in first[0] for t in pair] + list(first[1:]),
                    [t for pair in second[0] for t in pair] + list(second[1:])):
        assert a.tobytes() == b.tobytes()
    impls = [REGISTRY[name] for name in TIMED]
    table_1 = check(*first, impls, dtype=dtype).table
    table_2 = check(*second, impls, dtype=dtype).table
    pd.testing.assert_frame_equal(table_1, table_2)


def test_every_framework_receives_the_same_bits():
    # Each framework converts the same float64 arrays; float64 -> float32 rounds to nearest in
    # all three, so the float32 inputs are bit-identical.
    import jax.numpy as jnp
    import torch

    params, x, y = make_inputs(Problem(seed=4))
    for array in [x, y] + [t for pair in params for t in pair]:
        as_numpy = array.astype(np.float32)
        assert np.asarray(jnp.asarray(as_numpy)).tobytes() == as_numpy.tobytes()
        assert torch.tensor(array, dtype=torch.float32).numpy().tobytes() == as_numpy.tobytes()


def test_nonfinite_results_name_the_first_tensor():
    params, x, y = make_inputs(Problem(scale=1e20))
    table = check(params, x, y, [REGISTRY["jax_manual"]], dtype="float32").table
    assert not table["agrees"].all()
    assert nonfinite_summary(table).startswith("non-finite results, first in the loss")


def test_input_overflow_is_named():
    params, x, y = make_inputs(Problem(scale=1e39))
    assert input_overflow(params, x, y, "float32").startswith("W1 overflows float32")
    assert input_overflow(params, x, y, "float64") == ""


def test_check_reports_numerical_faults(capsys):
    assert main(["check", "--scale", "1e39"]) == 1
    out, err = capsys.readouterr()
    assert "Numerical faults: W1 overflows float32" in out
    assert "first in the loss" in out
    assert err == ""  # no warnings, no traceback
