"""Bootstrap intervals over images: calibrated (coverage over many seeds), deterministic, mmseg's NaN rule."""
import math

import numpy as np
import pytest

from harness.ledger.stats import SUMMARY, bootstrap, paired_bootstrap, point_summary, resample_counts

from .synthetic import KnownDistribution, ledger_of

REPLICATIONS = 200


def _binomial_band(p: float, n: int, tail: float = 0.0005) -> tuple[float, float]:
    """The central 99.9 % of Binomial(n, p) / n: a calibrated interval's coverage lands here 999 times in 1,000."""
    from scipy.stats import binom
    return binom.ppf(tail, n, p) / n, binom.ppf(1 - tail, n, p) / n


def test_intervals_cover_the_true_value_at_the_stated_rate():
    """200 ledgers of 300 images drawn from a distribution whose aAcc / mIoU / mAcc are known: the 95 % interval
    covers the truth in about 95 % of them, and the 50 % interval in about 50 % (so it is not merely wide)."""
    dist = KnownDistribution()
    truth = dist.truth()
    covered = {level: dict.fromkeys(SUMMARY, 0) for level in (0.95, 0.5)}
    for seed in range(REPLICATIONS):
        ledger = dist.draw(300, seed=seed)
        for level in covered:
            boot = bootstrap(ledger, resamples=1000, seed=seed, level=level)
            for name in SUMMARY:
                covered[level][name] += boot.metrics[name].lo <= truth[name] <= boot.metrics[name].hi
    for level, counts in covered.items():
        lo, hi = _binomial_band(level, REPLICATIONS)
        for name, count in counts.items():
            assert lo <= count / REPLICATIONS <= hi, (level, name, count / REPLICATIONS, (lo, hi))


def test_point_values_are_mmseg_summary_of_the_summed_histograms():
    ledger = ledger_of([[5, 0, 1], [2, 0, 0]], [[6, 0, 3], [2, 1, 0]], [[8, 0, 1], [4, 0, 0]])
    # totals: I = [7, 0, 1], pred = [8, 1, 3], label = [12, 0, 1], union = [13, 1, 3]
    point = point_summary(ledger)
    assert point["aAcc"] == pytest.approx(8 / 13 * 100)
    assert point["mIoU"] == pytest.approx((7 / 13 + 0 / 1 + 1 / 3) / 3 * 100)   # predicted only: IoU 0, counted
    assert point["mAcc"] == pytest.approx((7 / 12 + 1 / 1) / 2 * 100)           # no label: NaN, left out


def test_a_class_absent_from_a_resample_is_left_out_of_its_mean():
    """Class 1 is in one image of two: resamples without that image average over class 0 alone (not as 0)."""
    ledger = ledger_of([[10, 0], [6, 3]], [[10, 0], [8, 3]], [[10, 0], [8, 4]])
    boot = bootstrap(ledger, resamples=400, seed=3)
    # mIoU per resample: both images once 9/12..; image 0 twice: IoU0 = 1, class 1 NaN -> 100; image 1 twice:
    # (6/10 + 3/4) / 2 = 67.5; the interval's ends are the extremes that occur
    assert boot.metrics["mIoU"].hi == pytest.approx(100.0)
    assert boot.metrics["mIoU"].lo == pytest.approx((12 / 20 + 6 / 8) / 2 * 100)
    assert not math.isnan(boot.metrics["mAcc"].lo)


def test_same_seed_same_interval_and_independent_of_the_block_size():
    ledger = KnownDistribution().draw(120, seed=7)
    a = bootstrap(ledger, resamples=500, seed=11)
    assert a == bootstrap(ledger, resamples=500, seed=11, block=37)
    assert a != bootstrap(ledger, resamples=500, seed=12)
    assert a.as_record() == {**{k: [a.metrics[k].lo, a.metrics[k].hi] for k in SUMMARY},
                             "level": 0.95, "resamples": 500, "seed": 11}


def test_resample_counts_draw_n_images_with_replacement():
    counts = resample_counts(np.random.default_rng(0), 50, 2000)
    assert counts.shape == (2000, 50) and (counts.sum(axis=1) == 50).all()
    assert counts.mean() == pytest.approx(1.0) and counts.var() == pytest.approx(1 - 1 / 50, rel=0.05)


def test_paired_bootstrap_of_a_ledger_against_itself_is_zero_with_zero_width():
    ledger = KnownDistribution().draw(100, seed=2)
    paired = paired_bootstrap(ledger, ledger, resamples=300)
    for name in SUMMARY:
        assert (paired.delta[name].value, paired.delta[name].lo, paired.delta[name].hi) == (0.0, 0.0, 0.0)
        assert not paired.delta[name].excludes_zero
    assert np.all(paired.class_lo == 0) and np.all(paired.class_hi == 0) and np.all(paired.class_delta == 0)


def test_paired_bootstrap_finds_a_consistent_gain_that_unpaired_intervals_overlap():
    """Every image gains ~1 point of intersection: the runs' own intervals overlap, the paired one excludes 0."""
    dist = KnownDistribution()
    base = dist.draw(200, seed=5)
    gained = np.minimum(base.intersect + (base.label - base.intersect) // 50, base.label)
    other = ledger_of(gained, base.pred + (gained - base.intersect), base.label, names=base.names, pixels=base.pixels)
    paired = paired_bootstrap(base, other, resamples=1000)
    a, b = bootstrap(base).metrics["mIoU"], bootstrap(other).metrics["mIoU"]
    assert b.lo < a.hi                                  # unpaired: overlapping
    assert paired.delta["mIoU"].excludes_zero and paired.delta["mIoU"].lo > 0
    assert paired.delta["mIoU"].value == pytest.approx(b.value - a.value)


def test_paired_bootstrap_refuses_unaligned_ledgers():
    dist = KnownDistribution()
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap(dist.draw(10, 0), dist.draw(11, 0))
    base = dist.draw(10, 0)
    other = ledger_of(base.intersect, base.pred, base.label, names=base.names[::-1])
    with pytest.raises(ValueError, match="different images"):
        paired_bootstrap(base, other)
