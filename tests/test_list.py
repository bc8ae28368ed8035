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


def test_list_follows_the_dataset_state(tmp_path, monkeypatch):
    assert _rows()["eva02_demo"]["dataset_state"].startswith("missing")
    root = tmp_path / "ADEChallengeData2016"
    runner = CliRunner()
    made = runner.invoke(cli, ["prepare", "ade20k", "--synthetic", "8", "--val", "4", "--data-root", str(root)])
    assert made.exit_code == 0, made.output
    # the demo's default data root is under REPRO_HOME; point REPRO_DATA at the one just made
    monkeypatch.setenv("REPRO_DATA", str(root))
    assert _rows()["eva02_demo"]["dataset_state"].startswith("synthetic")
    (root / "annotations" / "validation" / "ADE_val_00000002.png").unlink()
    assert _rows()["eva02_demo"]["dataset_state"].startswith("changed")
