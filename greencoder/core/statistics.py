"""The paper's statistics for repeated energy/time measurements: MAD outlier removal, summaries,
and a Mann-Whitney U comparison of two programs.

Repeated runs of one program are not normally distributed (a background task or a frequency
change adds a long right tail), so outliers are removed with a robust rule (median and median
absolute deviation, not mean and standard deviation, which the outliers themselves inflate) and
two programs are compared with a rank test that assumes no distribution. The significance level
defaults to the paper's alpha = 0.005.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from greencoder.core.errors import GreencoderError

DEFAULT_THRESHOLD = 3.0
DEFAULT_ALPHA = 0.005
MEAN_AD_SCALE = math.sqrt(math.pi / 2)
"""Makes the mean absolute deviation a consistent estimate of a normal sigma (E|X - mu| = sigma *
sqrt(2/pi)), as scale="normal" does for the MAD: both robust scores then read in sigmas."""


class TooFewSamplesError(GreencoderError, ValueError):
    """Too few measurements (after outlier removal) to compute what was asked for."""


def _as_array(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(array)):
        raise ValueError("measurements must be finite numbers (got NaN or infinity)")
    return array


def robust_scores(values: Sequence[float]) -> np.ndarray:
    """|x - median| in units of the spread: the normal-scaled MAD, or, when more than half the
    values are identical (MAD = 0), the normal-scaled mean absolute deviation about the median.

    Why the fallback: with MAD = 0 every value that differs from the median at all would have an
    infinite score. Meters with a coarse resolution (RAPL counts in ~61 uJ steps, timers in ticks)
    often repeat a reading, and [1, 1, 1, 2, 2] would lose 40 % of its runs. The mean absolute
    deviation is the usual stand-in (the "MeanAD" rule of Iglewicz & Hoaglin's modified z-score):
    it still flags [5]*9 + [100], but keeps the 2s above. When it is 0 too, all values equal the
    median and every score is 0, so nothing is removed."""
    array = _as_array(values)
    if array.size == 0:
        return array
    deviations = np.abs(array - np.median(array))
    spread = stats.median_abs_deviation(array, scale="normal")
    if spread == 0:
        spread = MEAN_AD_SCALE * float(np.mean(deviations))
    if spread == 0:
        return np.zeros_like(array)
    return deviations / spread


def remove_outliers_mad(values: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> tuple[list[float], list[float]]:
    """Split `values` into (kept, removed), both in input order: a value is an outlier when
    |x - median| / MAD > threshold, with MAD = scipy's median_abs_deviation(scale="normal")
    (see `robust_scores` for MAD = 0)."""
    if threshold <= 0:
        raise ValueError(f"outlier threshold must be positive, got {threshold}")
    array = _as_array(values)
    outlier = robust_scores(array) > threshold
    return array[~outlier].tolist(), array[outlier].tolist()


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of the measurements left after outlier removal."""

    n: int  # values kept
    n_removed: int  # outliers removed
    mean: float
    median: float
    std: float | None  # sample standard deviation (ddof=1); None for a single value
    min: float
    max: float
    q1: float  # 25th / 75th percentiles, numpy's default linear interpolation
    q3: float
    cv: float | None  # std / mean: run-to-run noise as a fraction; None when undefined

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(values: Sequence[float], threshold: float | None = DEFAULT_THRESHOLD) -> Summary:
    """Remove MAD outliers (unless `threshold` is None), then describe what is left."""
    kept, removed = _split(values, threshold)
    return _describe(kept, len(removed))


def _split(values: Sequence[float], threshold: float | None) -> tuple[list[float], list[float]]:
    if threshold is None:
        return _as_array(values).tolist(), []
    return remove_outliers_mad(values, threshold)


def _describe(kept: list[float], n_removed: int) -> Summary:
    if not kept:
        raise TooFewSamplesError("no measurements to summarize")
    array = np.asarray(kept)
    mean = float(np.mean(array))
    std = float(np.std(array, ddof=1)) if array.size > 1 else None
    q1, median, q3 = (float(q) for q in np.percentile(array, [25, 50, 75]))
    return Summary(
        n=int(array.size),
        n_removed=n_removed,
        mean=mean,
        median=median,
        std=std,
        min=float(array.min()),
        max=float(array.max()),
        q1=q1,
        q3=q3,
        cv=std / mean if std is not None and mean != 0 else None,
    )


def _relative_pct(baseline: float, other: float) -> float | None:
    return (other / baseline - 1.0) * 100.0 if baseline != 0 else None


@dataclass(frozen=True)
class Comparison:
    """Program b against program a (the baseline)."""

    u_statistic: float  # Mann-Whitney U of sample a (scipy's convention)
    p_value: float  # two-sided
    alpha: float
    significant: bool  # p_value < alpha
    relative_pct: float | None
    """(mean_b / mean_a - 1) * 100 on outlier-free values: -30 means b used 30 % less. The mean,
    because energy adds up (mean x runs is the total, so this is also the ratio of total energy)
    and the paper reports means; outliers are already gone, so the mean is not at their mercy.
    None when a's mean is 0."""
    relative_pct_median: float | None  # the same with medians, for readers who want the robust one
    a: Summary
    b: Summary

    def to_dict(self) -> dict:
        return asdict(self)


def min_attainable_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can give for these sample sizes
    (complete separation): 2 / C(n_a + n_b, n_a)."""
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def compare(
    a: Sequence[float],
    b: Sequence[float],
    alpha: float = DEFAULT_ALPHA,
    threshold: float | None = DEFAULT_THRESHOLD,
) -> Comparison:
    """Two-sided Mann-Whitney U test of b against a on their outlier-free values.

    Raises TooFewSamplesError when fewer than 2 values per side are left, or when the sample sizes
    are so small that no outcome could reach `alpha` (a "not significant" would then say nothing
    about the programs, only about the number of runs)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    kept_a, removed_a = _split(a, threshold)
    kept_b, removed_b = _split(b, threshold)
    summary_a, summary_b = _describe(kept_a, len(removed_a)), _describe(kept_b, len(removed_b))
    if min(summary_a.n, summary_b.n) < 2:
        raise TooFewSamplesError(
            f"need at least 2 measurements per program after outlier removal, "
            f"got {summary_a.n} and {summary_b.n}"
        )
    best_p = min_attainable_p(summary_a.n, summary_b.n)
    if best_p >= alpha:
        raise TooFewSamplesError(
            f"with {summary_a.n} and {summary_b.n} measurements (after outlier removal) the smallest "
            f"possible p-value is {best_p:.3g}, never below alpha={alpha}; measure more runs"
        )
    result = stats.mannwhitneyu(kept_a, kept_b, alternative="two-sided")
    p_value = float(result.pvalue)
    return Comparison(
        u_statistic=float(result.statistic),
        p_value=p_value,
        alpha=alpha,
        significant=p_value < alpha,
        relative_pct=_relative_pct(summary_a.mean, summary_b.mean),
        relative_pct_median=_relative_pct(summary_a.median, summary_b.median),
        a=summary_a,
        b=summary_b,
    )

