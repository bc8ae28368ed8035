"""expected/: the published tables match their sources, tolerances validate, published() for `repro list`."""
import json

import pandas as pd
import pytest

from harness.errors import ReproError
from harness.verify.expected import load_expected, load_tolerances, published

FILES = {
    "eval_eva02_B_sz512_ss.json": ("eva02_B_sz512", "ss"),
    "eval_eva02_L_sz512_ss.json": ("eva02_L_sz512", "ss"),
    "eval_eva02_L_sz512_ms.json": ("eva02_L_sz512", "ms"),
    "eval_eva02_L_sz640_ss.json": ("eva02_L_sz640", "ss"),
}


def test_published_readme_numbers():
    assert published("eva02_B_sz512") == {"baseline": False, "protocols": {"ss": {"aAcc": 85.41, "mIoU": 55.25, "mAcc": 66.81}}}
    assert published("eva02_L_sz512")["protocols"] == {"ss": {"aAcc": 86.67, "mIoU": 59.77, "mAcc": 72.05},
                                                       "ms": {"aAcc": 86.98, "mIoU": 60.42, "mAcc": 72.54}}
    assert published("eva02_L_sz640")["protocols"] == {"ss": {"aAcc": 86.83, "mIoU": 60.05, "mAcc": 72.17}}


def test_demo_is_a_baseline_and_an_empty_value_reads_as_none(expected_copy):
    """published() gives the demo's rows of summary.csv (read here with the csv module), and None for a baseline
    value not measured yet (the assertion used to accept any float or None, so it could not fail)."""
    import csv

    path = expected_copy / "summary.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["reproduction"] == "eva02_demo"]
    demo = published("eva02_demo", expected_copy)
    assert demo["baseline"] is True
    assert demo["protocols"] == {p: {r["metric"]: float(r["value"]) for r in rows if r["protocol"] == p}
                                 for p in ("ss", "ms")}
    path.write_text(path.read_text().replace(f"eva02_demo,ms,mIoU,{rows[4]['value']},", "eva02_demo,ms,mIoU,,"))
    assert published("eva02_demo", expected_copy)["protocols"]["ms"]["mIoU"] is None


def test_unknown_reproduction_suggests():
    with pytest.raises(ReproError, match=r"Unknown reproduction 'eva02_B_sz521'. Did you mean: eva02_B_sz512"):
        published("eva02_B_sz521")


@pytest.mark.parametrize("name", sorted(FILES))
def test_per_class_rows_are_the_authors_values_in_percent(reference, name):
    """Every per-class row equals the authors' fraction x100 rounded to 2 decimals; summary equals the README."""
    metric = json.loads((reference / "eva02" / name).read_text())["metric"]
    reproduction, protocol = FILES[name]
    expected = load_expected()
    table = expected.per_class
    rows = table[(table["reproduction"] == reproduction) & (table["protocol"] == protocol)]
    assert len(rows) == 300
    for row in rows.rename(columns={"class": "cls"}).itertuples():
        assert row.value == round(metric[f"{row.metric}.{row.cls}"] * 100, 2)
    assert set(rows["source_text"]) == {
        f"tests/data/eva02/{name} (baaivision/EVA@5623d08 EVA-02/seg/work_dirs/"
        + rows["source_text"].iloc[0].split("work_dirs/")[1]}
    summary = expected.summary
    summary = summary[(summary["reproduction"] == reproduction) & (summary["protocol"] == protocol)].set_index("metric")
    for key in ("aAcc", "mIoU", "mAcc"):
        assert summary.loc[key, "value"] == round(metric[key] * 100, 2)


def test_float32_artefacts_convert_faithfully():
    rows = load_expected().per_class.set_index(["reproduction", "protocol", "class", "metric"])["value"]
    assert rows[("eva02_L_sz512", "ss", "wall", "IoU")] == 82.66       # 0.8266000366210937
    assert rows[("eva02_L_sz512", "ss", "bed ", "IoU")] == 93.08       # 'bed ' keeps its trailing space


def test_every_row_names_a_source_and_every_tolerance_a_reason():
    expected = load_expected()
    assert expected.summary["source_text"].str.len().min() > 10
    assert expected.per_class["source_text"].notna().all()
    for tier in expected.tolerances.values():
        for group in ("metrics", "per_class"):
            for tolerance in tier[group].values():
                assert tolerance.abs >= 0 and len(tolerance.rationale) > 20


def test_released_is_tighter_than_retrain():
    tolerances = load_expected().tolerances
    for metric in ("aAcc", "mIoU", "mAcc"):
        assert tolerances["released"]["metrics"][metric].abs < tolerances["retrain"]["metrics"][metric].abs


@pytest.mark.parametrize("entry, message", [
    ("abs = -0.1\nrationale = \"x\"", "field 'released.metrics.mIoU.abs' must be >= 0, found -0.1"),
    ("abs = \"0.1\"\nrationale = \"x\"", "field 'released.metrics.mIoU.abs' must be float, found '0.1'"),
    ("abs = nan\nrationale = \"x\"", "field 'released.metrics.mIoU.abs' must be a finite number, found nan"),
    ("abs = 0.1", "field 'released.metrics.mIoU.rationale' is missing"),
    ("abs = 0.1\nrationale = \" \"", "field 'released.metrics.mIoU.rationale' is empty"),
    ("rationale = \"x\"", "field 'released.metrics.mIoU.abs' is missing"),
    ("abs = 0.1\nrationle = \"x\"", "field 'released.metrics.mIoU.rationle' is not a tolerances field; "
                                     "did you mean 'released.metrics.mIoU.rationale'?"),
    ("abs = true\nrationale = \"x\"", "field 'released.metrics.mIoU.abs' must be float, found True"),
], ids=["negative", "string", "nan", "no-rationale", "empty-rationale", "no-abs", "misspelled", "bool"])
def test_malformed_tolerance_entries(expected_copy, entry, message):
    path = expected_copy / "tolerances.toml"
    text = path.read_text()
    start = text.index("[released.metrics.mIoU]\n") + len("[released.metrics.mIoU]\n")
    end = text.index("[released.metrics.mAcc]")
    path.write_text(text[:start] + entry + "\n\n" + text[end:])
    with pytest.raises(ReproError) as info:
        load_tolerances(path)
    assert info.value.message == f"{path}: {message}"


@pytest.mark.parametrize("old, new, message", [
    ("[released.metrics.aAcc]", "[released.metric.aAcc]",
     "field 'released.metric' is not a tolerances field; did you mean 'released.metrics'?"),
    ("[retrain.statistics.mIoU]", "[retrain.statistics.mIOU]",
     "field 'retrain.statistics.mIOU' is not a tolerances field; did you mean 'retrain.statistics.mIoU'?"),
    ("min_runs = 2", 'min_runs = "2"', "field 'retrain.statistics.min_runs' must be int, found '2'"),
    ("[baseline]\n", "[baseline]\nper_class = \"all\"\n", "field 'baseline.per_class' must be a table, found 'all'"),
], ids=["misspelled-group", "misspelled-metric", "string-int", "string-table"])
def test_malformed_tolerance_files_name_the_field(expected_copy, old, new, message):
    path = expected_copy / "tolerances.toml"
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ReproError) as info:
        load_tolerances(path)
    assert info.value.message.startswith(f"{path}: {message}")
    assert "\n" not in info.value.one_line()


def test_bad_tables_are_refused(expected_copy):
    summary = expected_copy / "summary.csv"
    summary.write_text(summary.read_text().replace("eva02_B_sz512,ss,mIoU,55.25", "eva02_B_sz512,ss,mIoU,55,25"))
    with pytest.raises(ReproError, match="not a readable CSV table|is not a number"):
        load_expected(expected_copy)


def test_per_class_csv_keeps_bed_through_a_plain_pandas_read():
    from harness.paths import REPO_ROOT

    frame = pd.read_csv(REPO_ROOT / "expected" / "per_class.csv")
    assert len(frame) == 1200 and "bed " in set(frame["class"])
