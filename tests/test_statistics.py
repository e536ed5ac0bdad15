"""MAD outlier removal, summaries and the Mann-Whitney comparison, checked against scipy called directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from greencoder.core.errors import GreencoderError
from greencoder.core.statistics import (
    Comparison,
    TooFewSamplesError,
    compare,
    min_attainable_p,
    remove_outliers_mad,
    summarize,
)

RNG = np.random.default_rng(20240531)
NOISY = (10.0 + RNG.normal(0.0, 0.5, 40)).tolist() + [25.0, 2.0]  # two planted outliers


def test_mad_removal_matches_direct_scipy_computation():
    values = np.asarray(NOISY)
    mad = stats.median_abs_deviation(values, scale="normal")
    expected_outlier = np.abs(values - np.median(values)) / mad > 3.0
    kept, removed = remove_outliers_mad(NOISY)
    assert kept == values[~expected_outlier].tolist()
    assert removed == values[expected_outlier].tolist()
    assert {25.0, 2.0} <= set(removed)


def test_one_planted_spike_is_removed_and_nothing_else():
    values = [1.00, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.00, 9.0, 1.01]
    kept, removed = remove_outliers_mad(values)
    assert removed == [9.0]
    assert kept == [v for v in values if v != 9.0]  # input order kept


def test_threshold_is_respected():
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 1.6]  # robust score of 1.6: 0.6 / (0.075 * 1.4826) = 5.4
    assert remove_outliers_mad(values, threshold=6.0)[1] == []
    assert remove_outliers_mad(values, threshold=5.0)[1] == [1.6]


def test_identical_values_are_all_kept():
    assert remove_outliers_mad([4.0] * 7) == ([4.0] * 7, [])


def test_mad_zero_falls_back_to_mean_absolute_deviation():
    # More than half identical: MAD is 0. Quantised readings must not lose every differing run...
    assert remove_outliers_mad([1.0, 1.0, 1.0, 2.0, 2.0]) == ([1.0, 1.0, 1.0, 2.0, 2.0], [])
    # ...but a real spike among identical readings still goes.
    assert remove_outliers_mad([5.0] * 9 + [100.0]) == ([5.0] * 9, [100.0])


def test_empty_and_bad_input():
    assert remove_outliers_mad([]) == ([], [])
    with pytest.raises(ValueError, match="finite"):
        remove_outliers_mad([1.0, float("nan")])
    with pytest.raises(ValueError, match="threshold"):
        remove_outliers_mad([1.0, 2.0], threshold=0)


def test_summary_on_hand_computed_numbers():
    summary = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], threshold=None)  # MAD would drop 2, 7, 9
    assert summary.n == 8 and summary.n_removed == 0
    assert summary.mean == 5.0
    assert summary.median == 4.5
    assert summary.std == pytest.approx(np.sqrt(32 / 7))  # squared deviations sum to 32, ddof=1
    assert (summary.min, summary.max) == (2.0, 9.0)
    assert (summary.q1, summary.q3) == (4.0, 5.5)
    assert summary.cv == pytest.approx(np.sqrt(32 / 7) / 5.0)
    assert json.loads(json.dumps(summary.to_dict()))["median"] == 4.5


def test_summary_removes_outliers_first():
    summary = summarize([1.0, 1.02, 0.98, 1.01, 0.99, 9.0])
    assert summary.n == 5 and summary.n_removed == 1 and summary.max == 1.02
    assert summarize([1.0, 1.02, 0.98, 1.01, 0.99, 9.0], threshold=None).max == 9.0


def test_summary_of_one_value_and_of_none():
    one = summarize([3.0])
    assert one.n == 1 and one.mean == 3.0 and one.std is None and one.cv is None
    with pytest.raises(TooFewSamplesError):
        summarize([])


def test_compare_matches_scipy_on_the_same_numbers():
    a = (10.0 + RNG.normal(0.0, 1.0, 15)).tolist()
    b = (10.5 + RNG.normal(0.0, 1.0, 12)).tolist()
    kept_a, _ = remove_outliers_mad(a)
    kept_b, _ = remove_outliers_mad(b)
    direct = stats.mannwhitneyu(kept_a, kept_b, alternative="two-sided")
    result = compare(a, b)
    assert isinstance(result, Comparison)
    assert result.u_statistic == direct.statistic
    assert result.p_value == direct.pvalue
    assert result.alpha == 0.005


def test_compare_tests_the_outlier_free_samples():
    a = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1, 500.0]
    b = [8.0, 8.1, 7.9, 8.2, 8.0, 7.8, 8.1, 8.0]
    direct = stats.mannwhitneyu(a[:-1], b, alternative="two-sided")
    result = compare(a, b)
    assert result.a.n_removed == 1
    assert (result.u_statistic, result.p_value) == (direct.statistic, direct.pvalue)


def test_clearly_separated_samples_are_significant():
    a = [100.0 + i for i in range(10)]
    b = [50.0 + i for i in range(10)]
    result = compare(a, b)
    assert result.significant and result.p_value < 0.005


def test_overlapping_samples_are_not_significant():
    a = (10.0 + RNG.normal(0.0, 1.0, 20)).tolist()
    b = (10.0 + RNG.normal(0.0, 1.0, 20)).tolist()
    result = compare(a, b)
    assert not result.significant and result.p_value >= 0.005


def test_relative_percent_is_exact():
    # means 10 and 7.5 (b 25 % lower); medians 10 and 8 (b 20 % lower)
    a = [9.0, 10.0, 11.0, 9.0, 10.0, 11.0]
    b = [8.0, 8.0, 5.0, 8.0, 8.0, 8.0]
    result = compare(a, b, alpha=0.05, threshold=None)
    assert result.relative_pct == pytest.approx(-25.0)
    assert result.relative_pct_median == pytest.approx(-20.0)
    assert compare(b, a, alpha=0.05, threshold=None).relative_pct == pytest.approx(100 * (10 / 7.5 - 1))
    assert json.loads(json.dumps(result.to_dict()))["b"]["mean"] == 7.5


def test_too_few_samples_is_a_clear_error():
    with pytest.raises(TooFewSamplesError, match="at least 2"):
        compare([1.0], [2.0, 3.0])
    # 5 vs 5 can never reach p < 0.005 (best case 2 / C(10, 5) = 0.0079): say so instead of "no difference"
    assert min_attainable_p(5, 5) == pytest.approx(2 / 252)
    with pytest.raises(TooFewSamplesError, match="never below alpha") as caught:
        compare([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert isinstance(caught.value, GreencoderError)  # the CLI shows it as one line
    assert compare([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]).significant  # 6 vs 6 can: 2 / 924
