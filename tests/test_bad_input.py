"""Bad input, everywhere: every option of every command and every config key, given a bad value,
gets one line naming it, exit code 2, no traceback, and nothing written."""

import argparse

import pytest

from bench.cases import _CASE_KEYS, _PLAN_KEYS
from bench.cli import build_parser

# (command, option) -> (the bad arguments, a fragment of the one-line message)
BAD_OPTIONS = {
    ("check", "--sizes"): (["--sizes", "16,x,1"], "'x' is not a positive integer"),
    ("check", "--batch"): (["--batch", "0"], "'0' is not a positive integer"),
    ("check", "--init"): (["--init", "he"], "invalid choice: 'he'"),
    ("check", "--std"): (["--std", "-2"], "'-2' is not a finite number >= 0"),
    ("check", "--scale"): (["--scale", "inf"], "'inf' is not a finite number >= 0"),
    ("check", "--seed"): (["--seed", "x"], "'x' is not an integer >= 0"),
    ("check", "--dtype"): (["--dtype", "float16"], "invalid choice: 'float16'"),
    ("check", "--device"): (["--device", "tpu"], "invalid choice: 'tpu'"),
    ("check", "--impl"): (["--impl", "jax_magic"], "'jax_magic' is not an implementation"),
    ("run", "--preset"): (["--preset", "huge"], "unknown preset 'huge'"),
    ("run", "--config"): (["--config", "/nonexistent.toml"], "cannot read config"),
    ("run", "--sizes"): (["--sizes", "4"], "need at least two"),
    ("run", "--batch"): (["--sizes", "4,1", "--batch", "-1"], "'-1' is not a positive integer"),
    ("run", "--init"): (["--init", "orthogonal"], "invalid choice: 'orthogonal'"),
    ("run", "--init alone"): (["--init", "kaiming"], "--init shapes a one-case run and needs --sizes"),
    ("run", "--std"): (["--std", "nan"], "'nan' is not a finite number >= 0"),
    ("run", "--scale"): (["--scale", "-1"], "'-1' is not a finite number >= 0"),
    ("run", "--seed"): (["--seed", "1.5"], "'1.5' is not an integer >= 0"),
    ("run", "--impl"): (["--impl", "jax_manual,,nope"], "'nope' is not an implementation"),
    ("run", "--dtype"): (["--dtype", "bfloat16"], "invalid choice: 'bfloat16'"),
    ("run", "--device"): (["--device", "tpu"], "invalid choice: 'tpu'"),
    ("run", "--threads"): (["--threads", "2,0"], "'0' is not a positive integer"),
    ("run", "--steps"): (["--steps", "many"], "'many' is not a positive integer"),
    ("run", "--max-time"): (["--max-time", "-1"], "'-1' is not a finite number >= 0"),
    ("run", "--output"): (["--output", "{blocked}/results"], "cannot write to output directory"),
    ("run", "--case-timeout"): (["--case-timeout", "0"], "'0' is not a number > 0"),
    ("run", "--plugin"): (["--plugin", "no_such_module"], "plugin 'no_such_module' cannot be imported"),
    ("run", "--resume"): (["--resume", "{tmp}"], "is not an interrupted run"),
    ("diagnose", "--sizes"): (["--sizes", "16,1"], "has no hidden layer"),
    ("diagnose", "--batch"): (["--batch", "0"], "'0' is not a positive integer"),
    ("diagnose", "--inits"): (["--inits", "he"], "unknown init 'he'"),
    ("diagnose", "--oversize"): (["--oversize", "0"], "'0' is not a number > 0"),
    ("diagnose", "--threshold"): (["--threshold", "1"], "threshold 1.0 must lie strictly between 0 and 1"),
    ("diagnose", "--dtype"): (["--dtype", "int8"], "invalid choice: 'int8'"),
    ("diagnose", "--seed"): (["--seed", "-1"], "'-1' is not an integer >= 0"),
    ("diagnose", "--output"): (["--output", "{blocked}/diag"], "cannot write to"),
    ("trace", "--sizes"): (["--sizes", "1,x,1"], "'x' is not a positive integer"),
    ("trace", "--batch"): (["--batch", "0"], "'0' is not a positive integer"),
    ("trace", "--z"): (["--z", "nan"], "'nan' is not a finite number"),
    ("trace", "--dtype"): (["--dtype", "float8"], "invalid choice: 'float8'"),
    ("hlo", "--sizes"): (["--sizes", ""], "'' is not a positive integer"),
    ("hlo", "--batch"): (["--batch", "x"], "'x' is not a positive integer"),
    ("hlo", "--init"): (["--init", "x"], "invalid choice: 'x'"),
    ("hlo", "--std"): (["--std", "x"], "'x' is not a finite number >= 0"),
    ("hlo", "--scale"): (["--scale", "x"], "'x' is not a finite number >= 0"),
    ("hlo", "--seed"): (["--seed", "x"], "'x' is not an integer >= 0"),
    ("hlo", "--dtype"): (["--dtype", "x"], "invalid choice: 'x'"),
    ("compare", "run_a"): (["/nonexistent-a", "/nonexistent-b"], "is not a complete run directory"),
    ("compare", "run_b"): (["{run}", "/nonexistent-b"], "is not a complete run directory"),
    ("compare", "--fail-above"): (["--fail-above", "x", "{run}", "{run}"], "'x' is not a finite number >= 0"),
    ("compare", "--output"): (["{run}", "{run}", "--output", "{blocked}/cmp"], "cannot write to"),
    ("report", "run_dir"): (["/nonexistent-run"], "is not a run directory"),
}
FLAGS = {("run", "--allow-tf32"), ("run", "--no-diagnostics"), ("diagnose", "--quiet")}


def options_of_every_command():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            yield name, (action.option_strings[0] if action.option_strings else action.dest)


def test_every_option_has_a_bad_value_test():
    untested = set(options_of_every_command()) - set(BAD_OPTIONS) - FLAGS
    assert not untested, f"options without a bad-input test: {sorted(untested)}"


@pytest.fixture
def places(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    run = tmp_path / "run"
    run.mkdir()
    (run / "env.json").write_text('{"run_id": "run"}')
    (run / "records-x.jsonl").write_text("")
    return {"blocked": str(blocked), "tmp": str(tmp_path), "run": str(run)}


@pytest.mark.parametrize("key", list(BAD_OPTIONS), ids=[f"{c}{o}" for c, o in BAD_OPTIONS])
def test_bad_option(key, places, tmp_path, usage_error):
    command, _ = key
    argv, fragment = BAD_OPTIONS[key]
    argv = [a.format(**places) for a in argv]
    extra = ["--output", str(tmp_path / "out")] if command == "run" and "--output" not in argv else []
    before = sorted(p.name for p in tmp_path.iterdir())
    usage_error([command, *argv, *extra], fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


GOOD_CASE = "{ sizes = [4, 1], batch = 2 }"
# config key -> (the preset table's text, a fragment of the message)
BAD_CONFIG = {
    "impls": (f"impls = ['jax_manual', 'nope']\ncases = [{GOOD_CASE}]", "[p].impls: 'nope' is not one of"),
    "dtypes": (f"dtypes = 'float32'\ncases = [{GOOD_CASE}]", "[p].dtypes must be a non-empty list"),
    "devices": (f"devices = ['tpu']\ncases = [{GOOD_CASE}]", "[p].devices: 'tpu' is not one of"),
    "max_time": (f"max_time = 'long'\ncases = [{GOOD_CASE}]", "[p].max_time 'long' must be a number"),
    "cases": ("cases = []", "[p].cases must be a non-empty list of cases"),
    "sizes": ("cases = [{ sizes = 16 }]", "[p].cases[0].sizes must be a list of positive integers"),
    "batch": ("cases = [{ sizes = [4, 1], batch = 0 }]", "[p].cases[0]: batch 0 is not a positive integer"),
    "init": ("cases = [{ sizes = [4, 1], init = 'he' }]", "[p].cases[0]: unknown init 'he'"),
    "std": ("cases = [{ sizes = [4, 1], std = -1.0 }]", "[p].cases[0]: std -1.0 is not a finite number"),
    "scale": ("cases = [{ sizes = [4, 1], scale = 'big' }]", "[p].cases[0]: scale 'big' is not a finite"),
    "bias_std": ("cases = [{ sizes = [4, 1], bias_std = nan }]", "[p].cases[0]: bias_std nan is not a"),
    "seed": ("cases = [{ sizes = [4, 1], seed = -3 }]", "[p].cases[0]: seed -3 is not an integer >= 0"),
}


def test_every_config_key_has_a_bad_value_test():
    assert set(BAD_CONFIG) == _PLAN_KEYS | _CASE_KEYS


@pytest.mark.parametrize("key", list(BAD_CONFIG))
def test_bad_config_value(key, tmp_path, usage_error):
    text, fragment = BAD_CONFIG[key]
    config = tmp_path / "mine.toml"
    config.write_text(f"[p]\n{text}\n")
    err = usage_error(["run", "--config", str(config), "--preset", "p",
                       "--output", str(tmp_path / "out")], fragment)
    assert str(config) in err
    assert not (tmp_path / "out").exists()
