"""The command line: exit codes, the agreement table, and one clear line for bad input."""

import pytest
from wrong_impls import WRONG

from bench.cli import main
from impls import REGISTRY


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_default_agrees(capsys):
    code, out, _err = run(capsys, "check")
    assert code == 0, out
    assert "All 3 implementations agree with the oracle" in out
    rows = [line for line in out.splitlines() if line.startswith("| jax_manual ") and "agrees" in line]
    assert len(rows) == 7  # loss and dW, db of three layers


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_saturated_agrees(capsys, dtype):
    code, out, _ = run(capsys, "check", "--scale", "20", "--dtype", dtype)
    assert code == 0, out
    assert "DISAGREES" not in out


def test_check_exits_1_when_an_implementation_disagrees(capsys, monkeypatch):
    monkeypatch.setitem(REGISTRY, "wrong_tanh_grad", WRONG["wrong_tanh_grad"])
    code, out, _ = run(capsys, "check", "--impl", "jax_manual,wrong_tanh_grad")
    assert code == 1
    assert "DISAGREE: wrong_tanh_grad" in out


@pytest.mark.parametrize("argv, fragment", [
    (["check", "--sizes", "16,x,1"], "'x' is not a positive integer"),
    (["check", "--sizes", "16"], "need at least two"),
    (["check", "--sizes", "16,0"], "'0' is not a positive integer"),
    (["check", "--batch", "0"], "'0' is not a positive integer"),
    (["check", "--batch", "-3"], "'-3' is not a positive integer"),
    (["check", "--impl", "jax_magic"], "'jax_magic' is not an implementation"),
    (["check", "--init", "he"], "invalid choice: 'he'"),
    (["check", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["check", "--scale", "-1"], "'-1' is not a finite number >= 0"),
    (["check", "--device", "gpu", "--impl", "numpy_reference"], "runs on the CPU only"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
], ids=["sizes-word", "sizes-one", "sizes-zero", "batch-zero", "batch-negative", "impl-unknown",
        "init-unknown", "dtype-unknown", "scale-negative", "device-unavailable", "command-unknown"])
def test_bad_input_is_one_line_and_exit_2(usage_error, argv, fragment):
    usage_error(argv, fragment)
