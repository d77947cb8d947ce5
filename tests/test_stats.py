import doctest
import time

import numpy as np
import pytest

import seal.stats
from seal.stats import Comparison, bootstrap_ci, paired_comparison, seed_summary, sign_flip_p_value


def rows(n, seed=0):
    """Per-passage accuracies of a baseline row, ids p0..p{n-1}."""
    rng = np.random.default_rng(seed)
    return {f"p{i}": float(x) for i, x in enumerate(rng.integers(0, 6, n) / 5)}


def test_constant_difference_gives_a_zero_width_interval_at_that_value():
    b = rows(60)
    c = paired_comparison({k: v + 0.25 for k, v in b.items()}, b)
    assert c.diff == pytest.approx(0.25) and c.n == 60
    assert c.ci_low == pytest.approx(0.25, abs=1e-12) and c.ci_high == pytest.approx(0.25, abs=1e-12)
    low, high = bootstrap_ci([0.4] * 30)
    assert low == high == pytest.approx(0.4)  # every resample is the same 30 numbers: exactly zero width


@pytest.mark.parametrize("n", [5, 16, 17, 200])  # exact enumeration up to 16 items, Monte Carlo above
def test_identical_rows_give_p_one(n):
    a = rows(n)
    assert paired_comparison(a, dict(a)) == Comparison(diff=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, n=n)


def test_large_shift_on_many_passages_is_significant():
    b = rows(100)
    rng = np.random.default_rng(1)
    a = {k: v + 0.2 + 0.1 * float(rng.standard_normal()) for k, v in b.items()}
    c = paired_comparison(a, b)
    assert c.p_value < 0.01 and 0.0 < c.ci_low < c.diff < c.ci_high
    assert c.p_value == pytest.approx(1 / 10_001)  # no sign pattern reaches the observed shift: the +1 floor


def test_a_small_noisy_difference_is_not_significant():
    b = rows(40)
    rng = np.random.default_rng(2)
    a = {k: v + 0.3 * float(rng.standard_normal()) for k, v in b.items()}
    c = paired_comparison(a, b)
    assert c.p_value > 0.05 and c.ci_low < 0.0 < c.ci_high


@pytest.mark.parametrize("diffs, p", [
    ([1.0, 1.0, 1.0], 2 / 8),  # only all-plus and all-minus reach |sum| 3
    ([2.0, 1.0], 2 / 4),  # |sums| 3, 1, 1, 3: two of four reach 3
    ([1.0, -1.0], 1.0),  # observed |sum| 0: every pattern reaches it
    ([0.5, 0.0, 0.0], 1.0),  # zeros do not change the sum: |sums| are all 0.5
])
def test_exact_sign_flip_p_values_worked_by_hand(diffs, p):
    assert sign_flip_p_value(diffs) == pytest.approx(p)


def test_monte_carlo_p_value_agrees_with_exact_enumeration():
    d = np.random.default_rng(3).normal(0.1, 0.5, 17)  # 17 items: above the exact limit, so sampled
    signs = np.where(np.arange(2**17)[:, None] >> np.arange(17) & 1, 1.0, -1.0)
    exact = float((np.abs(signs @ d) >= abs(d.sum()) - 1e-12).mean())
    assert sign_flip_p_value(d, resamples=20_000) == pytest.approx(exact, abs=0.01)


def test_bootstrap_interval_matches_the_normal_approximation_for_many_items():
    x = np.random.default_rng(4).random(400)
    low, high = bootstrap_ci(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.15 * half)
    narrower = bootstrap_ci(x, level=0.5)
    assert low < narrower.low < x.mean() < narrower.high < high


def test_deterministic_for_a_seed_and_uses_only_shared_items():
    b = rows(50)
    rng = np.random.default_rng(9)
    a = {k: v + 0.1 * float(rng.standard_normal()) for k, v in b.items()}
    first = paired_comparison(a, b, seed=7)
    assert paired_comparison(dict(reversed(list(a.items()))), b, seed=7) == first  # dict order does not matter
    assert paired_comparison(a, b, seed=8) != first
    assert paired_comparison({**a, "only_in_a": 1.0}, {**b, "only_in_b": 0.0}, seed=7) == first
    diffs = [a[k] - b[k] for k in sorted(a)]
    assert (first.ci_low, first.ci_high) == bootstrap_ci(diffs, seed=7)  # the paired CI resamples differences


def test_ten_thousand_resamples_over_200_items_take_well_under_a_second():
    a, b = rows(200, seed=5), rows(200, seed=6)
    start = time.perf_counter()
    paired_comparison(a, b)
    bootstrap_ci(list(a.values()))
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: paired_comparison({"a": 1.0}, {"b": 1.0}), "share no items"),
    (lambda: bootstrap_ci([]), "non-empty"),
    (lambda: bootstrap_ci([0.5, float("nan")]), "1 values are NaN or infinite"),
    (lambda: bootstrap_ci([0.5], level=95), "level must be between 0 and 1"),
    (lambda: bootstrap_ci([0.5], resamples=0), "resamples must be at least 1"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_seed_summary():
    assert seed_summary([20.0, 24.0, 16.0]) == (20.0, 4.0, 3)  # deviations -0, +4, -4: sqrt(32 / 2) = 4
    assert seed_summary([17.5]) == (17.5, 0.0, 1)


def test_doctests():
    assert doctest.testmod(seal.stats).failed == 0
