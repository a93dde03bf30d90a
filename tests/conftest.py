"""Strict settings for the whole run, and the guard that JAX's 64-bit mode never leaks."""

import jax
import numpy as np
import pytest

from impls import Problem, make_inputs


@pytest.fixture(autouse=True)
def x64_stays_off():
    """Every test must leave 64-bit mode as it found it: off."""
    assert not jax.config.jax_enable_x64
    yield
    assert not jax.config.jax_enable_x64, "a test left JAX's 64-bit mode switched on"
    assert jax.numpy.asarray(np.zeros(1)).dtype == np.float32


@pytest.fixture
def usage_error(capsys):
    """Run the command line and assert the bad-input contract: exit code 2, one line on stderr
    holding ``fragment``, nothing on stdout, no traceback. Returns that line."""
    from bench.cli import main

    def check(argv, fragment):
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert code == 2, out + err
        assert err.count("\n") == 1 and fragment in err, err
        assert out == "" and "Traceback" not in err
        return err

    return check


@pytest.fixture
def small_problem():
    return Problem(sizes=(3, 4, 2), batch=5, seed=1)


@pytest.fixture
def small_inputs(small_problem):
    return make_inputs(small_problem)
