"""Judging several training runs (seeds) statistically, as MLPerf's rcp_checker judges convergence.

The published value is the target (as MLPerf's quality target is fixed). The seed noise is estimated by
pooling the runs' own sample variance (n-1 degrees of freedom) with the authors' run-to-run spread
(expected/tolerances.toml [retrain.statistics]: reference_std over reference_runs, reference_runs-1 degrees of
freedom), so two or three tight runs cannot claim less noise than the authors saw. The runs fail when their mean
is significantly *below* the target: one-sided t-test, t = (mean - published) / (s_pooled / sqrt(n)),
p = scipy.stats.t.cdf(t, df), fail when p < alpha. With many runs (>= olympic_min_runs) the best and the worst
are dropped first (the olympic mean MLPerf reports). Being better than published never fails.

Example::

    >>> judge_runs([59.2, 59.9, 59.5], published=59.77, reference_std=0.64, reference_runs=2).passed
    True
    >>> judge_runs([58.8, 58.9, 58.85], published=59.77, reference_std=0.64, reference_runs=2).passed
    False
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
    pooled_std: float
    df: int
    t_statistic: float
    p_value: float
    alpha: float
    passed: bool

    def describe(self) -> str:
        kind = "olympic mean" if self.olympic else "mean"
        verdict = "not significantly below" if self.passed else "significantly below"
        return (f"{kind} {self.mean:.2f} ± {self.std:.2f} (n={self.n}{f' of {self.n_total}' if self.olympic else ''}) "
                f"vs {self.published:.2f} published: {verdict} (one-sided t = {self.t_statistic:.2f}, df = {self.df}, "
                f"pooled std {self.pooled_std:.2f} with the authors' {self.reference_std:.2f}, p = {self.p_value:.3f} "
                f"{'>=' if self.passed else '<'} alpha {self.alpha})")


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
    ref_df = max(reference_runs - 1, 1)          # one author run still tells us the spread it was drawn with
    df = (n - 1) + ref_df
    pooled = math.sqrt(((n - 1) * std ** 2 + ref_df * reference_std ** 2) / df)
    t_stat = (mean - published) / (pooled / math.sqrt(n))
    p_value = float(stats.t.cdf(t_stat, df))
    return RunStatistics(n=n, n_total=len(values), mean=mean, std=std, olympic=len(judged) != len(values),
                         published=published, reference_std=reference_std, reference_runs=reference_runs,
                         pooled_std=pooled, df=df, t_statistic=t_stat, p_value=p_value, alpha=alpha,
                         passed=p_value >= alpha)
