"""Statistics for results tables: how sure is a row's accuracy, and is one row really better than another?

Every function is pure, seeded and works on per-item figures (one accuracy per passage or per ARC task):

    >>> bootstrap_ci([0.0, 0.5, 1.0, 0.5], resamples=2000, seed=0)
    Interval(low=0.125, high=0.875)
    >>> c = paired_comparison({"p1": 0.6, "p2": 0.8, "p3": 0.4}, {"p1": 0.4, "p2": 0.5, "p3": 0.4})
    >>> round(c.diff, 3), c.n, c.p_value
    (0.167, 3, 0.5)
    >>> s = seed_summary([20.6, 24.7, 17.2])
    >>> round(s.mean, 2), round(s.std, 2), s.n
    (20.83, 3.76, 3)

docs/knowledge.md, "Grading and statistics", gives each definition and why it was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np

EXACT_SIGN_FLIP_MAX_N = 16  # up to 2**16 sign patterns are enumerated; above, they are sampled
_MAX_BLOCK = 2**22  # resampled indices held at once (32 MiB of int64), so memory stays flat as n grows


class Interval(NamedTuple):
    low: float
    high: float


class SeedSummary(NamedTuple):
    mean: float
    std: float  # sample standard deviation across seeds (ddof 1); 0 for a single seed
    n: int


@dataclass(frozen=True)
class Comparison:
    """Row a against baseline b on the items both scored: mean difference a - b, its paired bootstrap interval
    and the two-sided sign-flip p-value."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def _as_values(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: expected a non-empty list of numbers, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: {int((~np.isfinite(x)).sum())} values are NaN or infinite")
    return x


def _check(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` resamples of `values` drawn with replacement, each as large as `values`."""
    n = values.size
    rows = max(1, _MAX_BLOCK // n)
    out = np.empty(resamples)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        out[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)  # (rows, n) -> (rows,)
    return out


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, resamples: int = 10_000, level: float = 0.95,
                 seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean over items: resample the items with replacement `resamples`
    times and take the (1 - level)/2 and (1 + level)/2 quantiles of the resampled means.

    >>> bootstrap_ci([0.25] * 50)
    Interval(low=0.25, high=0.25)
    """
    _check(resamples, level)
    x = _as_values(values, "bootstrap_ci")
    means = bootstrap_means(x, resamples, np.random.default_rng(seed))
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(low), float(high))


def sign_flip_p_value(diffs: Sequence[float] | np.ndarray, *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired randomisation test of "no difference": under it each pair's difference is as likely
    negative as positive, so flip signs and see how often |sum| is at least the observed one. Exact (all 2**n
    sign patterns) for n <= 16; otherwise `resamples` random patterns with the +1 correction,
    (1 + hits) / (1 + resamples), which never gives 0.

    >>> sign_flip_p_value([1.0, 1.0, 1.0])  # 2 of the 8 patterns (all +, all -) reach |sum| = 3
    0.25
    >>> sign_flip_p_value([0.0] * 40)
    1.0
    """
    d = _as_values(diffs, "sign_flip_p_value")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    observed = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()  # sums of the same terms in another order may differ in the last bits
    n = d.size
    if n <= EXACT_SIGN_FLIP_MAX_N:
        patterns = np.arange(2**n)[:, None] >> np.arange(n) & 1  # (2**n, n) of 0/1
        sums = np.abs(np.where(patterns == 1, d, -d).sum(axis=1))
        return float((sums >= observed - tol).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    rows = max(1, _MAX_BLOCK // n)
    for start in range(0, resamples, rows):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(rows, resamples - start), n))  # (rows, n)
        hits += int((np.abs(signs @ d) >= observed - tol).sum())
    return (1 + hits) / (1 + resamples)


def paired_comparison(a: Mapping[str, float], b: Mapping[str, float], *, resamples: int = 10_000,
                      level: float = 0.95, seed: int = 0) -> Comparison:
    """Compare row `a` with baseline `b` ({item id: accuracy}) on the items both hold, paired by item: the mean
    difference, its percentile bootstrap interval (the per-item differences resampled, as `bootstrap_ci`) and the
    sign-flip p-value (`sign_flip_p_value`). Items only one row holds are left out; `n` counts the pairs."""
    _check(resamples, level)
    shared = sorted(set(a) & set(b))  # sorted: the resamples must not depend on dict order
    if not shared:
        raise ValueError(f"paired_comparison: the two rows share no items (a has {len(a)}, b has {len(b)})")
    d = _as_values([a[k] - b[k] for k in shared], "paired_comparison")
    low, high = bootstrap_ci(d, resamples=resamples, level=level, seed=seed)
    p = sign_flip_p_value(d, resamples=resamples, seed=seed + 1)
    return Comparison(diff=float(d.mean()), ci_low=low, ci_high=high, p_value=p, n=len(shared))


def seed_summary(values_per_seed: Sequence[float]) -> SeedSummary:
    """Mean and sample standard deviation of one figure measured once per seed (multi-run reports)."""
    x = _as_values(values_per_seed, "seed_summary")
    return SeedSummary(float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0, int(x.size))
