import json

from click.testing import CliRunner

from harness.cli import cli


def _rows():
    result = CliRunner().invoke(cli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    return {row["id"]: row for row in json.loads(result.output)}


def test_list_shows_published_numbers_and_protocols():
    rows = _rows()
    assert rows["eva02_L_sz512"]["protocols"] == ["ms", "ss"]
    assert rows["eva02_L_sz512"]["published"]["ms"] == {"aAcc": 86.98, "mIoU": 60.42, "mAcc": 72.54}
    assert rows["eva02_B_sz512"]["published"]["ss"]["mIoU"] == 55.25
    assert rows["eva02_demo"]["baseline"] is True and rows["eva02_L_sz640"]["baseline"] is False
    assert rows["eva02_B_sz512"]["weights"] == "missing, pretrained missing"


def test_list_follows_the_dataset_state():
    from harness.fetch import synthetic

    assert _rows()["eva02_demo"]["dataset_state"].startswith("missing")
    made = CliRunner().invoke(cli, ["prepare", "ade20k", "--synthetic", "8", "--val", "4"])
    assert made.exit_code == 0, made.output
    root = synthetic.default_root()   # the demo's default data root, under REPRO_HOME (REPRO_DATA never moves it)
    assert _rows()["eva02_demo"]["dataset_state"].startswith("synthetic")
    (root / "annotations" / "validation" / "ADE_val_00000002.png").unlink()
    assert _rows()["eva02_demo"]["dataset_state"].startswith("changed")
