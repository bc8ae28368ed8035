"""The judgement on curves built in the test: lr exact (with each log's rounding), loss and mIoU within the band of
several references, inconclusive with one, the answer per point, the cost."""
import pytest

from harness.curves import cost, logs, track
from harness.curves.references import Reference


def curve(name, lrs, losses, mious=(), seed=0, time=0.5, resolution=0.0):
    log = logs.TrainingLog(source=name, seed=seed, world_size=4)
    log.train = [logs.TrainPoint(iter=50 * (i + 1), lr=lr, lr_resolution=resolution, loss=loss, time=time)
                 for i, (lr, loss) in enumerate(zip(lrs, losses))]
    log.val = [logs.ValPoint(iter=it, metrics={"mIoU": m}, per_class={}) for it, m in mious]
    return log


def ref(log):
    return Reference(log.source, "file", __import__("pathlib").Path(log.source), {log.source: "0" * 64}, log)


LRS = [1e-4, 2e-4, 3e-4, 4e-4]


def test_lr_equal_within_rounding_is_on_track_and_a_doubled_lr_is_off_at_the_first_point():
    reference = ref(curve("a", [round(x, 5) for x in LRS], [5, 4, 3, 2], resolution=0.5e-5))
    same = track.judge(curve("run", LRS, [5, 4, 3, 2]), [reference], 1000)
    assert all(p["checks"]["lr"]["answer"] == "on track" for p in same["points"])
    doubled = track.judge(curve("run", [2 * x for x in LRS], [5, 4, 3, 2]), [reference], 1000)
    assert doubled["first_off_track"]["iter"] == 50
    assert doubled["points"][0]["answer"] == ("off track (first at iter 50: lr: lr 0.0002 vs 0.0001 in file a, seed 0 "
                                              "(tolerance 5.0e-06))")
    assert doubled["verdict"].startswith("off track (first at iter 50")


def test_relative_tolerance_is_1e4_on_exact_values():
    reference = ref(curve("a", LRS, [5, 4, 3, 2]))
    near = track.judge(curve("run", [x * (1 + 0.5e-4) for x in LRS], [5, 4, 3, 2]), [reference], 1000)
    far = track.judge(curve("run", [x * (1 + 3e-4) for x in LRS], [5, 4, 3, 2]), [reference], 1000)
    assert near["first_off_track"] is None and far["first_off_track"]["iter"] == 50


def test_one_reference_makes_loss_and_miou_inconclusive_with_the_reason():
    reference = ref(curve("a", LRS, [5, 4, 3, 2], mious=[(200, 30.0)]))
    report = track.judge(curve("run", LRS, [9, 9, 9, 9], mious=[(200, 10.0)]), [reference], 1000)
    last = report["points"][-1]
    assert last["kind"] == "eval"
    assert last["checks"]["mIoU"]["answer"] == "inconclusive"
    assert "one reference" in last["checks"]["mIoU"]["reason"] and "one reference" in last["answer"]
    assert report["first_off_track"] is None
    assert report["verdict"] == "on track for lr; inconclusive for loss, mIoU (see the points' reasons)"


def test_two_references_give_a_band_a_run_inside_is_on_track_one_far_below_is_off():
    a = ref(curve("a", LRS, [5.0, 4.0, 3.0, 2.0], mious=[(200, 30.0)], seed=1))
    b = ref(curve("b", LRS, [5.2, 4.1, 3.1, 2.1], mious=[(200, 31.0)], seed=2))
    good = track.judge(curve("run", LRS, [5.1, 4.05, 3.0, 2.05], mious=[(200, 30.5)]), [a, b], 1000)
    assert [p["answer"] for p in good["points"]] == ["on track"] * 4
    low, high = good["points"][-1]["checks"]["mIoU"]["band"]
    assert low < 30.0 and high > 31.0
    bad = track.judge(curve("run", LRS, [5.1, 4.05, 3.0, 2.05], mious=[(200, 12.0)]), [a, b], 1000)
    assert bad["first_off_track"] == {"iter": 200, "kind": "eval",
                                      "reason": bad["points"][-1]["answer"].split(": ", 1)[1][:-1]}
    assert "mIoU 12 below the band" in bad["points"][-1]["answer"]
    assert track.off_track_eval(bad)["iter"] == 200


def test_no_reference_at_that_iteration_is_inconclusive_never_silent():
    a = ref(curve("a", LRS[:2], [5, 4]))
    report = track.judge(curve("run", LRS, [5, 4, 3, 2]), [a], 1000)
    assert report["points"][-1]["checks"]["lr"] == {"answer": "inconclusive", "value": 4e-4,
                                                    "reason": "no reference logged lr at iter 200"}


def test_cost_from_step_time_and_world_size():
    c = cost.estimate(curve("run", LRS, [5, 4, 3, 2], time=0.5), 1000)
    assert c["gpu_hours_used"] == pytest.approx(200 * 0.5 * 4 / 3600)
    assert c["gpu_hours_to_go"] == pytest.approx(800 * 0.5 * 4 / 3600)
    assert "GPU-hours used" in cost.line(c)
