"""The setup facts of a reference, read from its env_info and config text without executing it, and compared."""
import pytest

from harness.curves import references, setup
from harness.errors import ReproError

AUTHORS = "eva02/train_eva02_B_sz512.log"


def test_literal_config_reads_the_authors_config_without_running_it(reference):
    text = (reference / "eva02/dumped_config_eva02_B_sz512.txt").read_text()
    cfg = setup.literal_config(text)
    assert cfg["data"]["samples_per_gpu"] == 8
    assert cfg["optimizer_config"]["use_fp16"] is True
    assert cfg["lr_config"]["warmup_iters"] == 1500
    assert setup.literal_config("import os\nx = os.system('echo no')\ny = dict(a=1)\n") == {"y": {"a": 1}}


def test_reference_facts_of_the_authors_b512_log(reference):
    ref = references.resolve(str(reference / AUTHORS), rep=type("R", (), {"id": "eva02_B_sz512"})())[0]
    facts = setup.reference_facts(ref)
    assert facts["total_batch"] == 32 and facts["_batch_parts"] == (4, 8, 1)
    assert facts["crop_size"] == (512, 512) and facts["iterations"] == 60000
    assert (facts["optimizer"], facts["lr"]) == ("AdamW", 6e-05)
    assert facts["lr_schedule"] == {"policy": "poly", "power": 1.0, "min_lr": 0.0, "warmup": "linear",
                                    "warmup_ratio": 1e-06, "warmup_iters": 1500}
    assert facts["sync_bn"] is True and facts["fp16"] is True


def test_each_difference_is_one_named_line_and_refused_unless_allowed(reference):
    ref = references.resolve(str(reference / AUTHORS), rep=type("R", (), {"id": "eva02_B_sz512"})())[0]
    ours = dict(setup.reference_facts(ref), total_batch=8, _batch_parts=(2, 4, 1), fp16=False)
    with pytest.raises(setup.SetupDifference) as exc:
        setup.check(ours, [ref])
    line = exc.value.one_line()
    assert "total_batch: 8 (2 × 4) here, 32 (4 × 8) in file train_eva02_B_sz512.log, seed 0" in line
    assert "fp16: off here, on in" in line
    assert "--allow-setup-difference fp16 --allow-setup-difference total_batch" in line
    record = setup.check(ours, [ref], allowed=["total_batch", "fp16"])
    assert [d["name"] for d in record["differences"]] == ["total_batch", "fp16"] and "refused" not in record
    with pytest.raises(ReproError, match="no such setup fact"):
        setup.check(ours, [ref], allowed=["batch"])
