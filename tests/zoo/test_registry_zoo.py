"""mmseg's model zoo as reproductions: every ADE20K entry of the installed mmseg's metafiles parses into one."""
from __future__ import annotations

import json
import re
from importlib.util import find_spec

import pytest

from harness import registry
from harness.errors import ReproError
from harness.registry import zoo

pytestmark = pytest.mark.skipif(find_spec("mmseg") is None, reason="mmsegmentation (which ships the zoo) is not installed")

ADE20K_ENTRIES = 165          # mmseg 0.29.1: 602 entries in 45 metafiles, 165 with an ADE20K result
WITH_MS = 161                 # ... of which 161 also publish mIoU(ms+flip)


def _metafile_block(metafile: str, name: str) -> str:
    """The entry's lines in the metafile, cut from the raw text (not through the YAML reader under test)."""
    text = (zoo.zoo_root() / metafile).read_text()
    start = text.index(f"- Name: {name}\n")
    end = text.find("\n- Name:", start + 1)
    return text[start:end if end > 0 else None]


def test_every_ade20k_entry_parses_into_a_reproduction():
    reps = registry.zoo_reproductions()
    assert len(reps) == ADE20K_ENTRIES
    assert sum("mIoU" in rep.expected.values.get("ms", {}) for rep in reps.values()) == WITH_MS
    for rep_id, rep in reps.items():
        assert rep_id == f"mmseg/{rep.title}" and rep.dataset == "ade20k" and rep.source == "mmseg-zoo"
        assert rep.config_path("ss").is_file() and rep.config_path("ms") == rep.config_path("ss")
        assert rep.settings("ss") == {} and rep.settings("ms")["test_aug"]["flip"] is True
        assert rep.weights.url.startswith("https://download.openmmlab.com/")
        assert re.fullmatch(r"[0-9a-f]{8}", rep.weights.sha256_prefix)
        assert rep.weights.filename.endswith(f"-{rep.weights.sha256_prefix}.pth")
        assert 0 < rep.expected.values["ss"]["mIoU"] < 100
        assert rep.custom_imports == () and rep.training is None
        assert "mmsegmentation 0.29.1" in rep.expected.source


@pytest.mark.parametrize("name, published", [
    ("upernet_beit-large_fp16_8x1_640x640_160k_ade20k", (56.33, 56.84)),
    ("upernet_swin_large_patch4_window12_512x512_pretrain_384x384_22K_160k_ade20k", (52.25, 54.12)),
    ("segformer_mit-b5_640x640_160k_ade20k", (50.19, 51.41)),
])
def test_spot_checks_against_the_metafile_text(name, published):
    rep = registry.get(f"mmseg/{name}")
    block = _metafile_block(rep.extra["metafile"], name)
    assert f"mIoU: {rep.expected.values['ss']['mIoU']}" in block
    assert f"mIoU(ms+flip): {rep.expected.values['ms']['mIoU']}" in block
    assert f"Config: {rep.protocols['ss']}" in block
    assert f"Weights: {rep.weights.url}" in block
    assert (rep.expected.values["ss"]["mIoU"], rep.expected.values["ms"]["mIoU"]) == published   # the peers


def test_unknown_zoo_id_names_close_entries():
    with pytest.raises(ReproError) as info:
        registry.get("mmseg/segformer_mit-b0_512x512_160k_ade")
    assert "segformer_mit-b0_512x512_160k_ade20k" in str(info.value)


def test_our_folders_keep_their_ids_and_custom_imports():
    reps = registry.all_reproductions()
    assert "eva02_L_sz512" in reps and not any(rid.startswith("mmseg/") for rid in reps)
    assert registry.get("eva02_L_sz512").custom_imports == ("harness.engine.modules",)


def test_needs_read_from_the_config_chain():
    from harness.registry.needs import config_needs

    counts = {"mmcls": 0, "fp16": 0, "PSAMask": 0}
    for rep in registry.zoo_reproductions().values():
        needs = config_needs(rep.config_path("ss"))
        counts["mmcls"] += "mmcls.models" in needs.imports
        counts["fp16"] += needs.fp16
        counts["PSAMask"] += "PSAMask" in needs.mmcv_ops
    assert counts == {"mmcls": 6 + 5, "fp16": 6 + 2, "PSAMask": 4}   # ConvNeXt + PoolFormer; ConvNeXt + BEiT/MAE


def test_list_zoo_json_lists_every_entry_and_filters(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import cli

    monkeypatch.setenv("REPRO_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["list", "--zoo", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == ADE20K_ENTRIES and {r["weights"] for r in rows} == {"missing"}
    result = CliRunner().invoke(cli, ["list", "--zoo", "--json", "--filter", "MIT-B0"])
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == ["mmseg/segformer_mit-b0_512x512_160k_ade20k"]
    assert rows[0]["published"] == {"ss": {"mIoU": 37.85}, "ms": {"mIoU": 38.97}}
    result = CliRunner().invoke(cli, ["list", "--zoo", "--filter", "psanet"])
    assert result.exit_code == 0 and result.output.count("needs: mmcv op PSAMask") == 4


@pytest.mark.parametrize("field, old, new", [
    ("Name", "- Name: segformer_mit-b0_512x512_160k_ade20k\n", "- Name: ../../../escaped\n"),
    ("segformer_mit-b0_512x512_160k_ade20k.Config", "Config: configs/segformer/segformer_mit-b0_512x512_160k_ade20k.py",
     "Config: /etc/passwd"),
    ("segformer_mit-b0_512x512_160k_ade20k.Weights", "segformer_mit-b0_512x512_160k_ade20k_20220617_162207-c00b9603.pth",
     ".."),
], ids=["name", "config", "weights"])
def test_a_hostile_index_is_refused_when_read(tmp_path, monkeypatch, field, old, new):
    """A zoo index from elsewhere whose entry name (a folder under runs/mmseg/), config or weights file name climbs
    out is one error naming the metafile and the field; `repro import` creates nothing (issue 24)."""
    from click.testing import CliRunner

    from harness.cli import cli

    metafile = tmp_path / "zoo" / "configs" / "segformer" / "segformer.yml"
    metafile.parent.mkdir(parents=True)
    text = (zoo.zoo_root() / "configs" / "segformer" / "segformer.yml").read_text()
    assert old in text
    metafile.write_text(text.replace(old, new, 1))
    (tmp_path / "zoo" / "model-index.yml").write_text("Import:\n- configs/segformer/segformer.yml\n")
    monkeypatch.setenv("REPRO_MMSEG_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("REPRO_RUNS", str(tmp_path / "a" / "b" / "runs"))
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "home"))
    with pytest.raises(ReproError) as info:
        registry.zoo_reproductions()
    assert info.value.message.startswith(f"{metafile}: field '{field}' ")
    record = tmp_path / "eval.json"
    record.write_text(json.dumps({"config": "x.py", "metric": {"aAcc": 0.8, "mIoU": 0.4, "mAcc": 0.5}}))
    name = new.removeprefix("- Name: ").strip() if field == "Name" else "segformer_mit-b0_512x512_160k_ade20k"
    result = CliRunner().invoke(cli, ["import", str(record), "--reproduction", f"mmseg/{name}", "--protocol", "ss"])
    assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["zoo", "configs", "segformer", "segformer.yml", "model-index.yml", "eval.json"]), "nothing created"


def test_index_imports_stay_below_the_zoo_root(tmp_path, monkeypatch):
    (tmp_path / "model-index.yml").write_text("Import:\n- ../outside/segformer.yml\n")
    monkeypatch.setenv("REPRO_MMSEG_ZOO", str(tmp_path))
    with pytest.raises(ReproError, match=r"model-index.yml: field 'Import' climbs out of its folder with '\.\.'"):
        registry.zoo_reproductions()
