"""The early verdict on real demo trainings: two seeds as references, a third seed on track at every point, a
planted fault that leaves the lr alone (dropout 0.99 in both heads) off track at the first evaluation point, and
--stop-when-off-track stopping it there with its checkpoint and a record that says why."""
import json

import pytest

from harness.curves.watch import judge_run, lines

from .conftest import DEMO

pytestmark = pytest.mark.slow
FAULT = ["model.decode_head.dropout_ratio=0.99", "model.auxiliary_head.dropout_ratio=0.99"]


def refs(demo_references):
    return [str(p) for p in demo_references]


def test_a_third_seed_is_on_track_at_every_point(demo_root, demo_references, tmp_path):
    from harness.run.api import train
    record = train("eva02_demo", seed=3, data_root=demo_root, work_dir=tmp_path / "run", echo=False,
                   reference=refs(demo_references), **DEMO)
    watch = json.loads((tmp_path / "run" / "watch.json").read_text())
    answers = {p["iter"]: p["answer"] for p in watch["points"]}
    assert set(answers.values()) == {"on track"}, answers
    assert [p["iter"] for p in watch["points"] if p["kind"] == "eval"] == [24, 48]
    assert all(set(p["checks"]) >= {"lr", "loss"} for p in watch["points"])
    assert record["early_verdict"]["verdict"].startswith("on track (")
    assert [r["seed"] for r in record["early_verdict"]["references"]] == [1, 2]
    assert record["early_verdict"]["stopped"] is None and record["training"]["iterations"] == 48
    assert record["early_verdict"]["cost"]["gpu_hours_used"] > 0
    # repro watch reads the same from the log files
    again = judge_run(tmp_path / "run")
    assert [p["answer"] for p in again["points"]] == [p["answer"] for p in watch["points"]]
    assert lines(again)[-1] == f"verdict: {again['verdict']}"


def test_a_planted_fault_is_off_track_at_the_first_evaluation_point(demo_root, demo_references, tmp_path):
    from harness.run.api import train
    train("eva02_demo", seed=3, data_root=demo_root, work_dir=tmp_path / "run", echo=False,
          reference=refs(demo_references), **dict(DEMO, cfg_options=DEMO["cfg_options"] + FAULT))
    watch = json.loads((tmp_path / "run" / "watch.json").read_text())
    first_eval = next(p for p in watch["points"] if p["kind"] == "eval")
    assert first_eval["iter"] == 24 and first_eval["answer"].startswith("off track (first at iter ")
    assert first_eval["checks"]["lr"]["answer"] == "on track"          # the fault leaves the lr alone
    assert watch["points"][-1]["iter"] == 48                           # without the flag nothing stops


def test_stop_when_off_track_stops_at_the_first_evaluation_point_and_says_why(demo_root, demo_references, tmp_path):
    from harness.run.api import train
    record = train("eva02_demo", seed=3, data_root=demo_root, work_dir=tmp_path / "run", echo=False,
                   reference=refs(demo_references), stop_when_off_track=True,
                   **dict(DEMO, cfg_options=DEMO["cfg_options"] + FAULT))
    stopped = record["early_verdict"]["stopped"]
    assert stopped["iter"] == 24
    assert stopped["note"].startswith("stopped at iter 24 by --stop-when-off-track: off track")
    assert record["status"] == "succeeded" and record["training"]["iterations"] == 24
    assert "iter_24.pth" in record["artifacts"]["checkpoints"]
    assert (tmp_path / "run" / "iter_24.pth").is_file()
    assert record["early_verdict"]["file"] == "watch.json"
