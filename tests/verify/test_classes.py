"""The ADE20K class list the harness stores as data equals mmseg 0.29.1's."""
import json
import re

import pytest

from harness.ade20k_classes import CLASSES, canonical_class


def test_150_classes_in_the_authors_key_order(reference):
    metric = json.loads((reference / "eva02" / "eval_eva02_L_sz512_ss.json").read_text())["metric"]
    assert tuple(k[4:] for k in metric if k.startswith("IoU.")) == CLASSES
    assert len(CLASSES) == 150 and CLASSES[7] == "bed "


def test_equals_the_reference_fact_sheet(reference):
    block = (reference / "ade20k_classes.txt").read_text()
    names = [n.strip("'") for _, n in re.findall(r"(\d+) ('[^']*'|[a-z ]+?) \d+/\d+/\d+", block)]
    assert tuple(names) == CLASSES


def test_canonical_names():
    assert canonical_class("bed") == "bed "
    assert canonical_class(" chest of drawers ") == "chest of drawers"
    assert canonical_class("spaceship") is None


def test_equals_mmseg_when_it_imports():
    try:
        from mmseg.datasets.ade import ADE20KDataset
    except Exception as exc:  # noqa: BLE001 - mmseg needs torch + mmcv; the harness does not
        pytest.skip(f"mmseg not importable here ({type(exc).__name__})")
    assert tuple(ADE20KDataset.CLASSES) == CLASSES
