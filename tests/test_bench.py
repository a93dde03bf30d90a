"""The benchmark harness: presets, a real quick run, the report's schema and statistics, bad input."""

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import report, run, timing
from bench.cases import PRESETS, ConfigError, case_id, load_preset, matmul_flops
from bench.cli import main
from impls import TIMED, Problem, runtime


@pytest.mark.parametrize("name", ["quick", "default", "full"])
def test_presets_load(name):
    plan = load_preset(name)
    assert plan.cases and set(TIMED) <= set(plan.impls) and plan.preset == name
    assert ("torch_compile" in plan.impls) == (name == "full")  # too slow to compile for the others
    assert ("torch_manual" in plan.impls) == (name == "full")


def test_flop_model_by_hand():
    # sizes (3, 4, 2), batch 5: 6 * 5 * (3*4 + 4*2) = 600
    assert matmul_flops(Problem(sizes=(3, 4, 2), batch=5)) == 600


def test_case_ids_are_readable_and_distinct():
    assert case_id(Problem(sizes=(16, 32, 1), batch=8)) == "16-32-1_b8"
    assert case_id(Problem(sizes=(16, 32, 1), batch=8, init="kaiming", scale=20.0)) == \
        "16-32-1_b8_initkaiming_scale20.0"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One real run of the quick preset, shared by the tests that read its files."""
    output = tmp_path_factory.mktemp("results")
    code = main(["run", "--preset", "quick", "--max-time", "0.05", "--output", str(output)])
    return code, output


def test_quick_run_exits_0_and_links_latest(quick_run):
    code, output = quick_run
    assert code == 0
    latest = output / "latest"
    assert latest.is_symlink() and (output / latest.readlink()).is_dir()
    assert not list(output.glob(".tmp-*"))


def test_results_csv_schema(quick_run):
    _, output = quick_run
    results = pd.read_csv(output / "latest" / "results.csv", keep_default_na=False, na_values=[""])
    expected = (report.RESULT_COLUMNS + ["best_threads", "ceiling_gflops", "floor_s",
                                         "pct_of_ceiling", "regime"]
                + [f"speedup_vs_{impl}" for impl in TIMED])
    assert list(results.columns) == expected
    cpu = results[results["device"] == "cpu"]
    assert sorted(cpu["impl"]) == sorted(TIMED * 2)  # three implementations x two cases
    assert cpu["agrees"].all() and (cpu["error"].fillna("") == "").all()
    assert (cpu["median_s"] > 0).all() and (cpu["rounds"] >= 5).all()
    for impl in TIMED:
        assert cpu.loc[cpu["impl"] == impl, f"speedup_vs_{impl}"].eq(1.0).all()


def test_statistics_come_from_pytest_benchmark_raw_rounds(quick_run):
    _, output = quick_run
    run_dir = output / "latest"
    results = pd.read_csv(run_dir / "results.csv").set_index(["impl", "case", "device"])
    document = json.loads(next(run_dir.glob("benchmark-jax-t*.json")).read_text())
    assert document["machine_info"] and document["commit_info"]
    gradients = [bench for bench in document["benchmarks"] if "impl" in bench["extra_info"]]
    assert len(gradients) == 4  # jax_manual and jax_autodiff on two cases
    for bench in gradients:
        row = results.loc[(bench["extra_info"]["impl"], bench["extra_info"]["case"], "cpu")]
        raw = bench["stats"]["data"]  # seconds per call, one entry per round
        assert len(raw) == row["rounds"]
        assert row["median_s"] == pytest.approx(statistics.median(raw))
        assert row["gflops"] == pytest.approx(row["flops"] / row["median_s"] / 1e9)


def test_ceilings_floors_and_regimes(quick_run):
    _, output = quick_run
    run_dir = output / "latest"
    machine = pd.read_csv(run_dir / "machine.csv").query("device == 'cpu'").set_index(["framework", "probe"])
    document = json.loads(next(run_dir.glob("benchmark-torch-t*.json")).read_text())
    ceiling = next(b for b in document["benchmarks"]
                   if b["extra_info"]["name"].startswith("ceiling-torch-cpu"))
    assert machine.loc[("torch", "ceiling"), "gflops"] == pytest.approx(
        2 * 1024 ** 3 / statistics.median(ceiling["stats"]["data"]) / 1e9)
    assert (machine["median_s"] > 0).all()
    results = pd.read_csv(run_dir / "results.csv").query("device == 'cpu'")
    for row in results.itertuples():
        floor = machine.loc[(row.framework, "floor"), "median_s"]
        top = machine.loc[(row.framework, "ceiling"), "gflops"]
        assert row.pct_of_ceiling == pytest.approx(100 * row.gflops / top)
        assert row.regime == report.regime(row.flops, top * 1e9, floor)
    paired = pd.read_csv(run_dir / "paired.csv").query("device == 'cpu'")
    assert len(paired) == 2 and (paired["pairs"] >= 10).all()
    assert ((paired["q1"] <= paired["median_ratio"]) & (paired["median_ratio"] <= paired["q3"])).all()


@pytest.mark.parametrize("flops, ceiling, floor, expected", [
    (1e6, 1e11, 1e-5, "compute-bound"),   # 10 us of products at the ceiling vs a 10 us floor
    (1e6, 1e11, 2e-5, "overhead-bound"),  # 10 us of products cannot beat a 20 us floor
    (1e6, float("nan"), 1e-5, ""),        # no ceiling measured: no label
], ids=["at-the-line", "under-the-floor", "unmeasured"])
def test_regime_rule_by_hand(flops, ceiling, floor, expected):
    assert report.regime(flops, ceiling, floor) == expected


def test_report_and_env_files(quick_run):
    _, output = quick_run
    run_dir = output / "latest"
    text = (run_dir / "report.md").read_text()
    for heading in ("## Median time per call", "## Speedup over torch_autograd",
                    "## Against the machine: ceilings, floors, GFLOP/s, regimes",
                    "## jax_manual against jax_autodiff, paired",
                    "## First call (compile) time", "## Agreement with the float64 oracle",
                    "## Noise", "## Plots"):
        assert heading in text
    assert "All 3 implementations agreed" in text
    env = json.loads((run_dir / "env.json").read_text())
    for key in ("run_id", "command", "cpu", "threads", "matmul_precision", "git_commit",
                "git_dirty", "XLA_FLAGS", "started", "finished"):
        assert key in env
    assert env["seed_and_inputs"]["16-32-32-1_b32"]["seed"] == 0
    assert len(env["seed_and_inputs"]["16-32-32-1_b32"]["sha256"]) == 64
    threads = env["threads"][0]
    assert env["frameworks"][f"jax-t{threads}"]["jax_default_matmul_precision"] == "highest"
    assert env["frameworks"][f"torch-t{threads}"]["torch_threads"] == threads
    assert (run_dir / "time_vs_flops.png").stat().st_size > 0
    assert (run_dir / "roofline.png").stat().st_size > 0
    assert (run_dir / "agreement.csv").stat().st_size > 0


def test_report_rebuilds_identically(quick_run, capsys):
    _, output = quick_run
    run_dir = output / "latest"
    before = (run_dir / "results.csv").read_text()
    (run_dir / "results.csv").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "results.csv").read_text() == before


@pytest.mark.skipif(runtime.gpu_available("jax") or runtime.gpu_available("torch"),
                    reason="a GPU is present: its cases run instead of skipping")
def test_gpu_cases_skip_cleanly_without_gpu(quick_run):
    _, output = quick_run
    results = pd.read_csv(output / "latest" / "results.csv", keep_default_na=False, na_values=[""])
    gpu = results[results["device"] == "gpu"]
    assert len(gpu) == len(TIMED) * 2
    assert gpu["error"].str.startswith("skipped").all() and gpu["median_s"].isna().all()


def write_fake_run(run_dir: Path, medians: dict, iqrs: dict, agrees=True, threads=2) -> None:
    """A run directory as a worker would leave it, with statistics chosen by hand."""
    run_dir.mkdir(exist_ok=True)
    records = []
    for impl, median in medians.items():
        records.append({"name": f"{impl}-4-1_b2-float32-cpu-t{threads}", "impl": impl,
                        "framework": "x", "case": "4-1_b2", "sizes": "4,1", "batch": 2,
                        "threads": threads, "steps": 1,
                        "n_params": 5, "flops": 48, "dtype": "float32", "device": "cpu",
                        "error": "", "compile_s": 0.5, "agrees": agrees, "max_abs_err": 0.0,
                        "norm_rel_err": 0.0, "err_ratio": 0.0, "agreement": [],
                        "stats": {"median": median, "iqr": iqrs[impl], "min": median,
                                  "mean": median, "stddev": 0.0, "rounds": 5, "iterations": 1}})
    (run_dir / f"records-x-t{threads}.jsonl").write_text("\n".join(json.dumps(r) for r in records))


def test_thread_sweep_compares_each_implementation_at_its_best(tmp_path):
    # a: 3 ms on 1 thread, 2 ms on 2; b: 1 ms on 1 thread, 4 ms on 2. At their best: a 2 ms, b 1 ms.
    write_fake_run(tmp_path / "run", {"a": 3e-3, "b": 1e-3}, {"a": 0.0, "b": 0.0}, threads=1)
    write_fake_run(tmp_path / "run", {"a": 2e-3, "b": 4e-3}, {"a": 0.0, "b": 0.0}, threads=2)
    results = report.build_tables(tmp_path / "run").results.set_index(["impl", "threads"])
    assert results["best_threads"].to_dict() == {("a", 1): False, ("b", 1): True,
                                                 ("a", 2): True, ("b", 2): False}
    assert results.loc[("b", 1), "speedup_vs_a"] == pytest.approx(2.0)
    assert results.loc[("a", 2), "speedup_vs_b"] == pytest.approx(0.5)
    assert np.isnan(results.loc[("a", 1), "speedup_vs_b"])  # not a's best: no comparison
    report.write_report(tmp_path / "run")
    text = (tmp_path / "run" / "report.md").read_text()
    assert "## Thread sweep" in text and "**2 ms**" in text and "**1 ms**" in text


def test_noise_flag_and_speedups_by_hand(tmp_path):
    # Medians 2 ms and 1 ms; IQRs 0.1 ms (5%: steady) and 0.2 ms (20%: noisy).
    write_fake_run(tmp_path / "run", {"slow": 2e-3, "fast": 1e-3}, {"slow": 1e-4, "fast": 2e-4})
    results = report.build_tables(tmp_path / "run").results
    rows = results.set_index("impl")
    assert rows.loc["slow", "noisy"] == False  # noqa: E712
    assert rows.loc["fast", "noisy"] == True  # noqa: E712
    assert rows.loc["fast", "speedup_vs_slow"] == pytest.approx(2.0)
    assert rows.loc["slow", "speedup_vs_fast"] == pytest.approx(0.5)
    assert rows.loc["fast", "gflops"] == pytest.approx(48 / 1e-3 / 1e9)


@pytest.mark.parametrize("agrees, worker_codes, expected", [
    (True, {"jax": 0}, 0),
    (False, {"jax": 1}, 1),
    (True, {"jax": 0, "torch": -11}, 1),
], ids=["all-agree", "one-disagrees", "worker-crashed"])
def test_exit_code(tmp_path, agrees, worker_codes, expected):
    write_fake_run(tmp_path / "run", {"a": 1e-3}, {"a": 0.0}, agrees=agrees)
    results = report.build_tables(tmp_path / "run").results
    assert run.exit_code(results, worker_codes) == expected


def test_report_marks_disagreement(tmp_path):
    write_fake_run(tmp_path / "run", {"a": 1e-3}, {"a": 0.0}, agrees=False)
    report.write_report(tmp_path / "run")
    assert "a on 4-1_b2 float32 cpu: DISAGREES" in (tmp_path / "run" / "report.md").read_text()


BAD_CONFIGS = {
    "malformed": ("[quick\ncases = []\n", "malformed TOML"),
    "empty": ("", "no presets in the file"),
    "unknown-key": ("[p]\nspeed = 1\ncases = [{ sizes = [4, 1] }]\n", "[p]: unknown key 'speed'"),
    "case-key": ("[p]\ncases = [{ sizes = [4, 1], batsh = 2 }]\n", "[p].cases[0]: unknown key 'batsh'"),
    "case-value": ("[p]\ncases = [{ sizes = [4, 0] }]\n", "[p].cases[0]: size 0"),
    "batch-type": ("[p]\ncases = [{ sizes = [4, 1], batch = 'x' }]\n", "[p].cases[0]: batch 'x'"),
    "dtype": ("[p]\ndtypes = ['float16']\ncases = [{ sizes = [4, 1] }]\n", "[p].dtypes: 'float16'"),
    "max-time": ("[p]\nmax_time = -1\ncases = [{ sizes = [4, 1] }]\n", "[p].max_time -1"),
    "no-cases": ("[p]\nimpls = ['jax_manual']\n", "[p].cases must be a non-empty list"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_names_file_and_key(tmp_path, usage_error, name):
    text, fragment = BAD_CONFIGS[name]
    config = tmp_path / "mine.toml"
    config.write_text(text)
    output = tmp_path / "out"
    err = usage_error(["run", "--config", str(config), "--preset", "p", "--output", str(output)],
                      fragment)
    assert str(config) in err
    assert not output.exists()  # nothing half-written


def test_malformed_toml_names_the_line(tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text("[p]\ncases = [\n  { sizes = [4, 1] \n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_preset("p", config)


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "--config", "/nonexistent/x.toml", "--preset", "p"], "cannot read config"),
    (["run", "--preset", "quick", "--impl", "numpy_fast"], "'numpy_fast' is not an implementation"),
    (["run", "--preset", "quick", "--threads", "0"], "'0' is not a positive integer"),
    (["run", "--preset", "quick", "--threads", "1,x"], "'x' is not a positive integer"),
    (["run", "--preset", "quick", "--steps", "0"], "'0' is not a positive integer"),
    (["run", "--preset", "quick", "--threads", "4096"], "--threads 4096"),
    (["run", "--preset", "quick", "--max-time", "0"], "'0' is not a number > 0"),
    (["run", "--preset", "quick", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["report", "/nonexistent-run"], "is not a run directory"),
], ids=["unknown-preset", "missing-config", "unknown-impl", "zero-threads", "threads-word",
        "zero-steps", "too-many-threads",
        "zero-max-time", "unknown-device", "report-not-a-run"])
def test_bad_run_options(tmp_path, usage_error, argv, fragment):
    usage_error(argv + (["--output", str(tmp_path / "out")] if argv[0] == "run" else []), fragment)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_directory(tmp_path, usage_error):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    usage_error(["run", "--preset", "quick", "--output", str(blocker / "results")],
                "cannot write to output directory")


@pytest.mark.skipif(any(v is not None for v in timing.probe_gpus(["jax", "torch"]).values()),
                    reason="a GPU is present")
def test_device_gpu_without_gpu_is_refused(tmp_path, usage_error):
    usage_error(["run", "--preset", "quick", "--device", "gpu", "--output", str(tmp_path / "out")],
                "sees no GPU")
    assert not any((tmp_path / "out").glob("*-quick"))


def test_presets_file_is_the_documented_one():
    assert PRESETS.name == "presets.toml" and PRESETS.exists()
