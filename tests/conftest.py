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
def small_problem():
    return Problem(sizes=(3, 4, 2), batch=5, seed=1)


@pytest.fixture
def small_inputs(small_problem):
    return make_inputs(small_problem)
