"""The pytest-benchmark workflow: benchmarks/ runs as its users know it, on the quick cases."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--benchmark-max-time=0.02", "--benchmark-min-rounds=3", "-p", "no:cacheprovider", "-q"]


def pytest_benchmark(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "COURIER_PLAN"}
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "--benchmark-only",
                           *FAST, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two autosaved runs in one storage, the second compared against the first."""
    tmp = tmp_path_factory.mktemp("pb")
    storage = f"file://{tmp / 'storage'}"
    first = pytest_benchmark(tmp, "--benchmark-autosave", f"--benchmark-storage={storage}",
                             f"--benchmark-json={tmp / 'first.json'}")
    second = pytest_benchmark(tmp, f"--benchmark-storage={storage}", "--benchmark-compare",
                              f"--benchmark-histogram={tmp / 'histogram'}")
    return tmp, first, second


def test_collects_and_runs_the_quick_cases(saved):
    tmp, first, _ = saved
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    names = [b["name"] for b in json.loads((tmp / "first.json").read_text())["benchmarks"]]
    gradients = [n for n in names if n.startswith("test_gradient[") and "-cpu-t" in n]
    assert len(gradients) == 3 * 2  # three implementations x the quick preset's two cases
    assert any(n.startswith("test_ceiling[") for n in names)
    assert any(n.startswith("test_floor[") for n in names)


def test_compare_and_histogram_work(saved):
    tmp, _, second = saved
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "Comparing against benchmarks from" in second.stdout + second.stderr
    assert list(tmp.glob("histogram*.svg"))


def test_pytest_benchmark_command_lists_saved_runs(saved):
    tmp, _, _ = saved
    listed = subprocess.run([sys.executable, "-c", "from pytest_benchmark.cli import main; main()",
                             "--storage", f"file://{tmp / 'storage'}", "list"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "0001_" in listed.stdout
