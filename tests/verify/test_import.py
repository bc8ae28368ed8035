"""`repro import` on the authors' real files, then `repro verify` on what it wrote."""
import json
import re
import xml.etree.ElementTree as ET

import pytest

from harness.run.record import read_result
from harness.registry import datasets

CLASSES = datasets.get("ade20k").classes
EVAL_FILES = {  # the authors' eval JSONs -> the (reproduction, protocol) the importer must infer
    "eval_eva02_B_sz512_ss.json": ("eva02_B_sz512", "ss"),
    "eval_eva02_L_sz512_ss.json": ("eva02_L_sz512", "ss"),
    "eval_eva02_L_sz512_ms.json": ("eva02_L_sz512", "ms"),
    "eval_eva02_L_sz640_ss.json": ("eva02_L_sz640", "ss"),
}


@pytest.mark.parametrize("name", sorted(EVAL_FILES))
def test_each_authors_eval_file_imports_and_passes_released(name, eva02, tmp_path, repro):
    run_dir = tmp_path / "run"
    result = repro("import", eva02 / name, "-o", run_dir)
    assert result.exit_code == 0, result.output
    record = read_result(run_dir)
    reproduction, protocol = EVAL_FILES[name]
    assert (record["reproduction"], record["protocol"], record["kind"]) == (reproduction, protocol, "import")
    source = json.loads((eva02 / name).read_text())["metric"]
    assert record["metrics"]["mIoU"] == pytest.approx(source["mIoU"] * 100, abs=1e-9)  # percent, not rounded
    assert list(record["per_class"]) == list(CLASSES)
    assert record["per_class"]["bed "]["IoU"] == pytest.approx(source["IoU.bed "] * 100)
    assert (run_dir / record["artifacts"]["eval_json"]).read_bytes() == (eva02 / name).read_bytes()

    verdict = repro("verify", run_dir, "--tier", "released")
    assert verdict.exit_code == 0, verdict.output
    assert "303 passed" in verdict.output
    published = {"eva02_B_sz512": "55.25", "eva02_L_sz512": {"ss": "59.77", "ms": "60.42"}, "eva02_L_sz640": "60.05"}
    value = published[reproduction] if isinstance(published[reproduction], str) else published[reproduction][protocol]
    assert (f"{reproduction} {protocol}: mIoU {value} vs {value} published, within ±0.10 — PASS (303 checks)"
            in verdict.output)


def test_miou_2_points_below_fails_retrain_naming_key_delta_tolerance_source(eva02, tmp_path, repro):
    data = json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())
    scale = (data["metric"]["mIoU"] - 0.02) / data["metric"]["mIoU"]
    data["metric"]["mIoU"] -= 0.02                    # 2 points lower, every class with it (a consistent file)
    for key in [k for k in data["metric"] if k.startswith("IoU.")]:
        data["metric"][key] *= scale
    lowered = tmp_path / "eval_lowered.json"
    lowered.write_text(json.dumps(data))
    run_dir = tmp_path / "run"
    assert repro("import", lowered, "-o", run_dir).exit_code == 0
    junit = tmp_path / "verify.xml"

    result = repro("verify", run_dir, "--junitxml", junit)

    assert result.exit_code == 1
    # not the authors' file of the released weights: judged as a retrain, saying why
    line = ("eva02_L_sz512 ss mIoU: obtained 57.77, expected 59.77 (published), |Δ| 2.00 > tolerance 1.40 "
            "[retrain] — source: EVA-02/seg/README.md (baaivision/EVA@5623d08)")
    assert line in result.output.splitlines()
    assert ("eva02_L_sz512 ss: mIoU 57.77 vs 59.77 published, |Δ| 2.00 outside ±1.40 — FAIL (1 of 3 checks "
            "failed: mIoU); tier retrain (checkpoint not recorded (not recorded: imported from eval_lowered.json)); "
            "overrides: none") in result.output
    assert "To update expected values:" in result.output
    assert "1 failed, 2 passed" in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["mIoU"]
    assert line in failed[0].find("failure").get("message")
    # the obtained values sit beside the run for a one-command diff
    table = (run_dir / "verify.csv").read_text()
    assert "mIoU" in table and "fail" in table

    refused = repro("verify", run_dir, "--tier", "released")
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {run_dir / 'result.json'}: --tier released judges the released weights "
                                     "with the published protocol, and this run differs: checkpoint not recorded")


def test_an_eval_file_whose_summary_was_edited_is_refused(eva02, tmp_path, repro):
    data = json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())
    data["metric"]["mIoU"] -= 0.003                   # the summary lowered, its 150 classes left as they were
    edited = tmp_path / "eval_edited.json"
    edited.write_text(json.dumps(data))
    run_dir = tmp_path / "run"
    assert repro("import", edited, "-o", run_dir).exit_code == 0
    result = repro("verify", run_dir)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {run_dir / 'result.json'}: mIoU 59.47 is not the mean of its 150 "
                                    "per-class IoU values (59.77, |Δ| 0.30 > 0.01): the record is inconsistent — fix:")


def test_training_log_json_yields_loss_and_lr_at_every_logged_iteration(eva02, tmp_path, repro):
    run_dir = tmp_path / "train"
    result = repro("import", eva02 / "train_eva02_B_sz512.log.json", "-o", run_dir)
    assert result.exit_code == 0, result.output
    record = read_result(run_dir)
    assert (record["reproduction"], record["protocol"]) == ("eva02_B_sz512", "ss")   # from exp_name
    train_lines = [json.loads(x) for x in (eva02 / "train_eva02_B_sz512.log.json").read_text().splitlines()[1:]]
    text_lr = {int(m.group(1)): float(m.group(2)) for m in
               re.finditer(r"Iter \[(\d+)/\d+\]\tlr: ([0-9.e+-]+),", (eva02 / "train_eva02_B_sz512.log").read_text())}
    curve = record["curves"]["train"]
    assert [row["iter"] for row in curve] == [line["iter"] for line in train_lines] == [50, 100, 150, 200, 250]
    assert [row["loss"] for row in curve] == [line["loss"] for line in train_lines]
    # log.json rounds lr to 5 decimals (0.0 in warm-up); the sibling text log's lr is used instead
    assert [line["lr"] for line in train_lines] == [0.0] * 5
    assert [row["lr"] for row in curve] == [text_lr[row["iter"]] for row in curve]
    assert curve[0]["lr"] == 2.368e-07
    assert record["metrics"] == {} and record["seed"] == 0
    assert record["environment"]["torch"] == "1.12.1"
    assert set(record["artifacts"]) == {"log", "log_json"}
    # nothing to verify in a log without evaluation: bad input, one line
    verdict = repro("verify", run_dir)
    assert verdict.exit_code == 2
    assert verdict.stderr.strip() == (f"error: {run_dir / 'result.json'} has no metrics to verify — fix: verify a "
                                      "finished eval/train run, or `repro import` a file that holds metrics")


def test_text_log_import_gives_the_same_curves(eva02, tmp_path):
    from harness.verify.importer import import_result

    from_json = read_result(import_result(eva02 / "train_eva02_B_sz512.log.json", out_dir=tmp_path / "a"))
    from_text = read_result(import_result(eva02 / "train_eva02_B_sz512.log", out_dir=tmp_path / "b"))
    assert from_text["curves"] == from_json["curves"]
    assert from_text["imported_from"]["format"] == "text_log"


def _prettytable_log(metric: dict) -> str:
    """What mmseg's evaluate prints (PrettyTable, values str(np.round(v*100, 2))) after a training-style prefix."""
    PrettyTable = pytest.importorskip("prettytable").PrettyTable   # what mmseg itself prints with

    classes = PrettyTable()
    classes.add_column("Class", list(CLASSES))
    classes.add_column("IoU", [str(round(metric[f"IoU.{c}"] * 100, 2)) for c in CLASSES])
    classes.add_column("Acc", [str(round(metric[f"Acc.{c}"] * 100, 2)) for c in CLASSES])
    summary = PrettyTable()
    for key in ("aAcc", "mIoU", "mAcc"):
        summary.add_column(key, [str(round(metric[key] * 100, 2))])
    return ("[>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>] 2000/2000, 5.1 task/s, elapsed: 392s, ETA:     0s\n"
            "2023-03-18 17:40:00,000 - mmseg - INFO - per class results:\n\n" + classes.get_string() + "\n"
            "2023-03-18 17:40:00,001 - mmseg - INFO - Summary:\n\n" + summary.get_string() + "\n")


def test_text_log_tables_import_with_bed_restored_and_verify(eva02, tmp_path, repro):
    metric = json.loads((eva02 / "eval_eva02_L_sz512_ms.json").read_text())["metric"]
    log = tmp_path / "test_ms.log"
    log.write_text(_prettytable_log(metric))
    run_dir = tmp_path / "run"
    missing = repro("import", log, "-o", run_dir)
    assert missing.exit_code == 2
    assert missing.stderr.strip() == ("error: cannot tell which reproduction test_ms.log belongs to: it names no "
                                      "config — fix: pass --reproduction ID --protocol ss|ms")
    result = repro("import", log, "--reproduction", "eva02_L_sz512", "--protocol", "ms", "-o", run_dir)
    assert result.exit_code == 0, result.output
    record = read_result(run_dir)
    assert record["metrics"] == {"aAcc": 86.98, "mIoU": 60.42, "mAcc": 72.54}
    assert "bed " in record["per_class"] and "bed" not in record["per_class"]
    assert record["per_class"]["bed "]["IoU"] == round(metric["IoU.bed "] * 100, 2)
    assert repro("verify", run_dir).exit_code == 0


def test_log_json_val_line_gives_metrics_and_the_step_of_the_preceding_train_line(eva02, tmp_path):
    from harness.verify.importer import import_result

    metric = json.loads((eva02 / "eval_eva02_B_sz512_ss.json").read_text())["metric"]
    lines = (eva02 / "train_eva02_B_sz512.log.json").read_text().splitlines()
    val = {"mode": "val", "epoch": 1, "iter": 500, "lr": 0.0, **metric}   # iter = val-set length / world size
    log = tmp_path / "run.log.json"
    log.write_text("\n".join(lines + [json.dumps(val)]) + "\n")
    record = read_result(import_result(log, out_dir=tmp_path / "run"))
    assert record["imported_kind"] == "train"
    assert record["curves"]["val"] == [{"step": 250, "aAcc": pytest.approx(85.41), "mIoU": pytest.approx(55.25),
                                        "mAcc": pytest.approx(66.81)}]
    assert record["metrics"]["mIoU"] == pytest.approx(55.25)
    assert record["curves"]["train"][0]["lr_source"] == "log.json"   # no sibling text log here


# ---- bad input: exit code 2 and one clear line --------------------------------------------------------------

def _write(path, text):
    path.write_text(text)
    return path


def test_import_empty_file(tmp_path, repro):
    empty = _write(tmp_path / "eval.json", "")
    result = repro("import", empty)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {empty} is empty — fix: pass the file mmseg wrote (eval JSON, text log or "
                             "*.log.json)\n")


def test_import_json_without_metrics(tmp_path, repro):
    path = _write(tmp_path / "eval.json", json.dumps({"config": "x.py"}))
    result = repro("import", path)
    assert result.exit_code == 2
    assert result.stderr == (f'error: {path} is JSON without metrics (no "metric" object) — fix: pass the eval JSON '
                             "written by mmseg tools/test.py --eval mIoU\n")


def test_import_nan_metric(eva02, tmp_path, repro):
    data = json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())
    data["metric"]["mIoU"] = float("nan")
    path = _write(tmp_path / "eval.json", json.dumps(data))   # json writes NaN, as Python's json.dump does
    result = repro("import", path)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: mIoU is nan, not a finite number — fix: the evaluation produced no "
                             "usable value; re-run it\n")


def test_import_unknown_class_names(eva02, tmp_path, repro):
    data = json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())
    data["metric"]["IoU.spaceship"] = 0.5
    path = _write(tmp_path / "eval.json", json.dumps(data))
    result = repro("import", path)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: unknown class name(s) 'spaceship' — fix: use the 150 ADE20K class "
                             "names of datasets/ade20k/dataset.toml verbatim ('bed ' ends in a space)\n")


def test_import_unknown_reproduction_suggests(eva02, tmp_path, repro):
    result = repro("import", eva02 / "eval_eva02_L_sz512_ss.json", "--reproduction", "eva02_L_sz521")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Unknown reproduction 'eva02_L_sz521'. Did you mean: eva02_L_sz512")
