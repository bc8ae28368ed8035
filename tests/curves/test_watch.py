"""`repro watch RUN` on a run folder's log files (as a Slurm run leaves them): the points, the cost, watch.json and
watch.png written, references given on the command line or recorded in job.json."""
import json

from click.testing import CliRunner

from harness.cli import cli


def make_run(tmp_path, reference, name="run", scale=1.0):
    run = tmp_path / name
    run.mkdir()
    lines = (reference / "curves/zoo_format_example.log.json").read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        item = json.loads(line)
        if item["mode"] == "train":
            item["loss"] = round(item["loss"] * scale, 5)
        elif item["mode"] == "val":
            item["mIoU"] = round(item["mIoU"] * scale, 4)
        out.append(json.dumps(item))
    (run / "train.log.json").write_text("\n".join(out) + "\n")
    (run / "job.json").write_text(json.dumps({"reproduction": "eva02_demo", "max_iters": 80000, "accumulate": 1,
                                              "launch": {"world_size": 4}, "device": "cuda"}))
    return run


def test_watch_with_two_references_on_track_and_cost(tmp_path, reference):
    a, b = make_run(tmp_path, reference, "a", 0.98), make_run(tmp_path, reference, "b", 1.02)
    run = make_run(tmp_path, reference, "run", 1.0)
    result = CliRunner().invoke(cli, ["watch", str(run), "--reference", str(a), "--reference", str(b)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert out[0] == "references: 2"
    assert "iter   8000 eval lr 0.0091, loss 1.269, mIoU 29.32: on track" in out
    assert out[-1] == "verdict: on track (loss, lr, mIoU at 9 points)"
    assert any(line.startswith("cost: ") and "× 4 process(es), iter 16000/80000" in line for line in out)
    watch = json.loads((run / "watch.json").read_text())
    assert [r["path"] for r in watch["references"]] == [str(a), str(b)]
    assert (run / "watch.png").read_bytes()[:4] == b"\x89PNG"


def test_watch_names_the_first_off_track_point(tmp_path, reference):
    a, b = make_run(tmp_path, reference, "a", 0.98), make_run(tmp_path, reference, "b", 1.02)
    run = make_run(tmp_path, reference, "run", 0.5)
    result = CliRunner().invoke(cli, ["watch", str(run), "--reference", str(a), "--reference", str(b)])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1].startswith("verdict: off track (first at iter 50: loss: smoothed loss 1.221 "
                                                     "below the band")


def test_watch_without_any_reference_says_so(tmp_path, reference):
    run = make_run(tmp_path, reference)
    result = CliRunner().invoke(cli, ["watch", str(run)])
    assert "no reference: every point is inconclusive (pass --reference FILE|URL|RUN)" in result.output
    assert result.output.splitlines()[-1] == "verdict: inconclusive for loss, lr, mIoU (see the points' reasons)"
