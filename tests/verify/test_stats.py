"""The retrain tier's statistics (harness/verify/stats.py)."""
import math

import pytest
from scipy import stats as scipy_stats

from harness.verify.stats import judge_runs, olympic


def test_runs_around_the_published_value_pass_and_clearly_low_runs_fail():
    assert judge_runs([59.2, 59.9, 59.5], 59.77, reference_std=0.64, reference_runs=2).passed
    assert not judge_runs([58.8, 58.9, 58.85], 59.77, reference_std=0.64, reference_runs=2).passed


def test_better_than_published_never_fails():
    result = judge_runs([61.0, 61.2], 59.77, reference_std=0.64, reference_runs=2)
    assert result.passed and result.p_value > 0.9


def test_t_statistic_and_p_value_follow_the_pooled_formula():
    values = [59.0, 59.4, 58.9, 59.3]
    result = judge_runs(values, 59.77, reference_std=0.64, reference_runs=3, alpha=0.05)
    n, mean = 4, sum(values) / 4
    s2 = sum((v - mean) ** 2 for v in values) / 3
    pooled = math.sqrt((3 * s2 + 2 * 0.64 ** 2) / 5)
    t = (mean - 59.77) / (pooled / math.sqrt(n))
    assert (result.df, result.mean) == (5, pytest.approx(mean))
    assert result.t_statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(scipy_stats.t.cdf(t, 5))
    # a single run's std must not shrink the noise below the authors' spread
    tight = judge_runs([59.77 - 0.3] * 3, 59.77, reference_std=0.64, reference_runs=2)
    assert tight.pooled_std > 0.3 and tight.passed


def test_olympic_mean_from_five_runs():
    assert olympic([1, 5, 3, 2, 4]) == [2, 3, 4]
    result = judge_runs([59.5, 59.6, 59.7, 40.0, 70.0], 59.77, 0.64, 2, olympic_min_runs=5)
    assert result.olympic and result.n == 3 and result.n_total == 5
    assert result.mean == pytest.approx(59.6)
    assert "olympic mean 59.60" in result.describe()


def test_refuses_fewer_than_two_runs_and_nan():
    with pytest.raises(ValueError):
        judge_runs([59.0], 59.77, 0.64, 2)
    with pytest.raises(ValueError):
        judge_runs([59.0, float("nan")], 59.77, 0.64, 2)
