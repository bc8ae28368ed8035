"""Fixtures for the zoo tests: a loopback file server standing in for OpenMMLab's download host, an isolated
REPRO_HOME, a small synthetic ADE20K-format dataset, and a zoo index whose SegFormer MiT-B0 entry points at
randomly initialised weights saved under a zoo-style name (`...-<first 8 hex of their sha256>.pth`)."""
from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

B0 = "segformer_mit-b0_512x512_160k_ade20k"
B0_ID = f"mmseg/{B0}"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REPRO_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.delenv("REPRO_MMSEG_ZOO", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def synthetic_val(tmp_path_factory) -> Path:
    from harness.fetch.synthetic import generate
    return generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=4, num_val=6, seed=1)


def random_b0_checkpoint(config: Path) -> bytes:
    """The entry's own model (its config, built by mmseg) with torch's random initialisation, as a checkpoint."""
    import torch
    from mmcv import Config
    from mmseg.models import build_segmentor

    from harness.engine import shims
    shims.apply_all()
    cfg = Config.fromfile(str(config))
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None          # no download of the ImageNet weights: random is the point
    torch.manual_seed(0)
    model = build_segmentor(cfg.model)
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "meta": {"note": "random weights for tests"}}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def random_zoo(tmp_path_factory) -> tuple[Path, str, bytes]:
    """(zoo root with the segformer metafile only, the B0 entry's new weights URL, the weights' bytes)."""
    from harness.registry import zoo

    installed = zoo.zoo_root()
    root = tmp_path_factory.mktemp("zoo")
    for folder in ("_base_", "segformer"):
        shutil.copytree(installed / "configs" / folder, root / "configs" / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    data = random_b0_checkpoint(root / "configs" / "segformer" / f"{B0}.py")
    published_url = zoo.get(B0_ID).weights.url
    url = published_url.rsplit("/", 1)[0] + f"/{B0}_random-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    metafile = root / "configs" / "segformer" / "segformer.yml"
    metafile.write_text(metafile.read_text().replace(f"Weights: {published_url}", f"Weights: {url}"))
    (root / "model-index.yml").write_text("Import:\n- configs/segformer/segformer.yml\n")
    return root, url, data


def url_path(url: str) -> str:
    return urlsplit(url).path
