"""Judging several training runs (seeds) statistically, as MLPerf's rcp_checker judges convergence.

The reference distribution is the published value as its mean and the authors' run-to-run spread as its
standard deviation (expected/tolerances.toml, [retrain.statistics]). The runs fail when their mean is
significantly *below* the reference: a one-sided Welch t-test (`scipy.stats.ttest_ind_from_stats`,
`alternative="less"`), p < alpha. With many runs (>= olympic_min_runs) the best and the worst are dropped
first (the olympic mean MLPerf reports). Being better than published never fails.

Example::

    >>> judge_runs([59.1, 59.6, 59.9], published=59.77, reference_std=0.64, reference_runs=2)
    RunStatistics(n=3, mean=59.53..., std=0.40..., ..., p_value=0.33..., passed=True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RunStatistics:
    n: int                 # runs judged (after olympic trimming)
    n_total: int           # runs given
    mean: float
    std: float             # sample std (ddof=1) of the judged runs
    olympic: bool
    published: float
    reference_std: float
    reference_runs: int
    t_statistic: float
    p_value: float
    alpha: float
    passed: bool

    def describe(self) -> str:
        kind = "olympic mean" if self.olympic else "mean"
        verdict = "not significantly below" if self.passed else "significantly below"
        return (f"{kind} {self.mean:.2f} ± {self.std:.2f} (n={self.n}{f' of {self.n_total}' if self.olympic else ''}) "
                f"vs {self.published:.2f} published (reference std {self.reference_std:.2f}, n={self.reference_runs}): "
                f"{verdict}, one-sided Welch t = {self.t_statistic:.2f}, p = {self.p_value:.3f} "
                f"{'>=' if self.passed else '<'} alpha {self.alpha}")


def olympic(values: list[float]) -> list[float]:
    """Drop one best and one worst value."""
    ordered = sorted(values)
    return ordered[1:-1]


def judge_runs(values: list[float], published: float, reference_std: float, reference_runs: int,
               alpha: float = 0.05, olympic_min_runs: int = 5) -> RunStatistics:
    """One-sided test of the runs' mean against the published value; see the module docstring."""
    from scipy import stats

    if len(values) < 2:
        raise ValueError("statistics need at least two runs")
    if any(not math.isfinite(v) for v in values):
        raise ValueError("statistics need finite values")
    judged = olympic(values) if len(values) >= olympic_min_runs else list(values)
    n = len(judged)
    mean = sum(judged) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in judged) / (n - 1))
    result = stats.ttest_ind_from_stats(mean, std, n, published, reference_std, reference_runs,
                                        equal_var=False, alternative="less")
    t_stat, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(p_value):  # both spreads zero cannot happen (reference_std > 0); keep a defined answer
        p_value = 1.0 if mean >= published else 0.0
    return RunStatistics(n=n, n_total=len(values), mean=mean, std=std, olympic=len(judged) != len(values),
                         published=published, reference_std=reference_std, reference_runs=reference_runs,
                         t_statistic=t_stat, p_value=p_value, alpha=alpha, passed=p_value >= alpha)
