"""Paired timing: ratios computed from paired samples, with a clock whose ticks are set by hand."""

import numpy as np
import pytest

from bench.paired import BLOCK_SECONDS, MAX_PAIRS, MIN_PAIRS, PairedRatio, plan_pairs, time_pairs


class FakeClock:
    """A clock that each call of A advances by 2 ms and each call of B by 1 ms."""

    def __init__(self):
        self.now, self.order = 0.0, []

    def __call__(self):
        return self.now

    def call(self, name, seconds):
        def run():
            self.order.append(name)
            self.now += seconds
        return run


def test_time_pairs_alternates_and_divides_pair_by_pair():
    clock = FakeClock()
    result = time_pairs(clock.call("a", 2e-3), clock.call("b", 1e-3), pairs=4, iterations=3,
                        timer=clock)
    blocks = ["a", "b", "b", "a", "a", "b", "b", "a"]  # A B, B A, A B, B A
    assert clock.order == [name for name in blocks for _ in range(3)]
    np.testing.assert_allclose(result.a, [2e-3] * 4)
    np.testing.assert_allclose(result.b, [1e-3] * 4)
    assert result.median == pytest.approx(2.0)


def test_ratio_statistics_by_hand():
    # Ratios 1, 2, 3, 4, 5: median 3, quartiles 2 and 4 (numpy's linear interpolation).
    result = PairedRatio(a=np.array([1.0, 4.0, 3.0, 8.0, 5.0]), b=np.array([1.0, 2.0, 1.0, 2.0, 1.0]))
    assert list(result.ratios) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert (result.median, result.q1, result.q3) == (3.0, 2.0, 4.0)


def test_drift_cancels_in_pairs():
    # A and B do the same work, but the machine slows by 1% with every call. A pair's first
    # member always looks faster; alternating which goes first keeps the median ratio at 1.
    clock, calls = FakeClock(), {"n": 0}

    def same_work():
        clock.now += 1e-3 * 1.01 ** calls["n"]
        calls["n"] += 1

    result = time_pairs(same_work, same_work, pairs=20, iterations=1, timer=clock)
    assert sorted(set(np.round(result.ratios, 4))) == [round(1 / 1.01, 4), 1.01]
    assert result.median == pytest.approx(1.0, abs=0.006)


@pytest.mark.parametrize("seconds, budget, expected", [
    (1e-4, 1.0, (MAX_PAIRS, 10)),        # 10 calls fill a 1 ms block; 1 s would allow 500 pairs
    (5e-3, 1.0, (100, 1)),               # one call per block, 1 s / (2 x 5 ms)
    (0.5, 1.0, (MIN_PAIRS, 1)),          # too slow for the budget: the minimum number of pairs
], ids=["fast", "medium", "slow"])
def test_plan_pairs(seconds, budget, expected):
    assert plan_pairs(seconds, budget) == expected
    assert BLOCK_SECONDS == 1e-3
