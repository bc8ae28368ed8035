"""`--cfg-options`: the values mmcv 1.7's DictAction gives, on a table of inputs (harness/cfg_options.py does not
import mmcv; this test does, to compare)."""
import argparse
import math

import pytest

from harness import cfg_options
from harness.errors import ReproError

VALUES = [
    "whole", "1", "-3", "0.5", "1e-4", "1_000", "true", "False", "TRUE", "None", "none", "null", "nan", "inf",
    "a,b", "1,2,3", "a,", ",a", "[a,b]", "(a,b)", "[1, 2, 3]", "(512, 512)", "[(1,2),(3,4)]", "[(1,[2,3]),x]",
    "[]", "()", "[[]]", "'quoted'", '"[1,2]"', "a b", "(a", "x=y", "[a,(b,c)],d", "''", "",
    "dict(type='SyncBN')", "[0.5,0.75,1.0,1.25,1.5,1.75]", "(True,None,3)",
]


@pytest.fixture(scope="module")
def dict_action():
    mmcv_config = pytest.importorskip("mmcv.utils.config", reason="mmcv (the engine's) is not installed here")
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=mmcv_config.DictAction)
    return lambda options: vars(parser.parse_args(["--cfg-options", *options]))["cfg_options"]


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


@pytest.mark.parametrize("text", VALUES)
def test_values_equal_mmcv_dict_action(dict_action, text):
    ours, theirs = cfg_options.parse([f"key={text}"])["key"], dict_action([f"key={text}"])["key"]
    assert _same(ours, theirs), (ours, theirs)


def test_several_options_and_the_documented_cases():
    parsed = cfg_options.parse(["model.test_cfg.mode=whole", "a=a,b", "t=(512,512)", "n=[(1,2),(3,4)]", "f=false"])
    assert parsed == {"model.test_cfg.mode": "whole", "a": ["a", "b"], "t": (512, 512), "n": [(1, 2), (3, 4)],
                      "f": False}
    assert cfg_options.parse({"x": 1}) == {"x": 1} and cfg_options.parse(None) == {}


@pytest.mark.parametrize("option, message", [
    ("novalue", "--cfg-options expects KEY=VALUE, got 'novalue'"),
    ("k=[a,(b]", "has unbalanced brackets"),
])
def test_malformed_options_are_one_line(option, message):
    with pytest.raises(ReproError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
        cfg_options.parse([option])
    assert "\n" not in err.value.one_line()


def test_a_tuple_reaches_the_config_as_a_tuple_through_job_json(tmp_path):
    """job.json keeps the options as text, so `(512,512)` is a tuple in the config the engine builds (JSON has no
    tuples: a parsed value written to job.json came back a list, which mmseg's Resize refuses as a scale list)."""
    import json

    from mmcv import Config

    kept = cfg_options.normalize(["crop_size=(512, 512)", "model.test_cfg.mode='whole'", "x=a,b"])
    back = json.loads(json.dumps(kept))
    assert back == {"crop_size": "(512,512)", "model.test_cfg.mode": "whole", "x": "a,b"}
    cfg = Config({"crop_size": None, "model": {"test_cfg": {}}, "x": None})
    cfg.merge_from_dict(cfg_options.parse(back))
    assert cfg.crop_size == (512, 512) and isinstance(cfg.crop_size, tuple)
    assert cfg.model.test_cfg.mode == "whole" and cfg.x == ["a", "b"]
    assert cfg_options.normalize({"crop_size": (512, 512), "r": [0.5, 1.0]}) == {"crop_size": "(512,512)",
                                                                                "r": "[0.5,1.0]"}
