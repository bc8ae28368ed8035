"""The synthetic ADE20K-format dataset: layout, encoding, determinism, learnable structure, CLI."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import cli
from harness.errors import ReproError
from harness.fetch import layout, synthetic


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "ADEChallengeData2016", 24, 6, seed=3)


def test_layout_names_and_encoding(syn):
    assert layout.check_layout(syn, {"training": 24, "validation": 6}) == {"training": 24, "validation": 6}
    assert (syn / "images/training/ADE_train_00000024.jpg").is_file()
    assert (syn / "annotations/validation/ADE_val_00000006.png").is_file()
    seen = set()
    sizes = set()
    for png in (syn / "annotations").rglob("*.png"):
        with Image.open(png) as ann:
            assert ann.mode == "L"
            labels = np.asarray(ann)
        seen |= set(np.unique(labels).tolist())
        sizes.add(labels.shape)
        assert min(labels.shape) >= 128 and min(labels.shape) <= 160
    assert seen <= {0} | set(synthetic.classes())
    assert 0 in seen and len(seen - {0}) >= 8
    assert len({h > w for h, w in sizes}) == 2, "both orientations occur"


def test_deterministic_and_prefix_stable(tmp_path, syn):
    again = synthetic.generate(tmp_path / "a" / "ADEChallengeData2016", 24, 6, seed=3)
    assert layout.read_manifest(again)["files_sha256"] == layout.read_manifest(syn)["files_sha256"]
    fewer = synthetic.generate(tmp_path / "b" / "ADEChallengeData2016", 5, 2, seed=3)
    rel = "images/training/ADE_train_00000005.jpg"
    assert (fewer / rel).read_bytes() == (syn / rel).read_bytes()
    other = synthetic.generate(tmp_path / "c" / "ADEChallengeData2016", 5, 2, seed=4)
    assert (other / rel).read_bytes() != (syn / rel).read_bytes()


def test_class_predictable_from_colour(syn):
    """A nearest-mean-colour classifier fit on training pixels labels validation pixels well."""
    def pixels(split):
        xs, ys = [], []
        for img in sorted((syn / "images" / split).glob("*.jpg")):
            ann = syn / "annotations" / split / (img.stem + ".png")
            x = np.asarray(Image.open(img), np.float32).reshape(-1, 3)
            y = np.asarray(Image.open(ann)).reshape(-1)
            xs.append(x[y > 0]), ys.append(y[y > 0])
        return np.concatenate(xs), np.concatenate(ys)
    x, y = pixels("training")
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    xv, yv = pixels("validation")
    pred = classes[np.argmin(((xv[:, None, :] - means[None]) ** 2).sum(-1), axis=1)]
    assert (pred == yv).mean() > 0.8


def test_existing_root_is_kept_or_refused(tmp_path):
    root = synthetic.generate(tmp_path / "ADEChallengeData2016", 4, 2)
    stamp = (root / layout.MANIFEST).stat().st_mtime_ns
    assert synthetic.generate(root, 4, 2) == root                      # same request: kept
    assert (root / layout.MANIFEST).stat().st_mtime_ns == stamp
    with pytest.raises(ReproError, match="already holds another dataset"):
        synthetic.generate(root, 5, 2)
    synthetic.generate(root, 5, 2, force=True)
    assert layout.read_manifest(root)["counts"] == {"training": 5, "validation": 2}
    assert not list(tmp_path.glob(".*")), "no staging or old folders left behind"


def test_cli(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    result = CliRunner().invoke(cli, ["prepare", "ade20k", "--synthetic", "8", "--val", "3", "--seed", "1",
                                      "--data-root", str(root)])
    assert result.exit_code == 0, result.output
    assert f"ready at {root}: 8 training / 3 validation images, seed 1" in result.output
    layout.check_manifest(root)
    result = CliRunner().invoke(cli, ["prepare", "ade20k", "--synthetic", "8", "--zip", "x.zip"])
    assert result.exit_code == 2 and "--synthetic takes only" in result.output


def test_default_roots(home, monkeypatch):
    result = CliRunner().invoke(cli, ["prepare", "ade20k", "--synthetic", "2"])
    assert result.exit_code == 0, result.output
    root = home / "data" / "ade20k-synthetic" / "ADEChallengeData2016"
    assert f"ready at {root}: 2 training / 1 validation images" in result.output
    from harness.fetch import dataroot
    assert dataroot.status(root) == "synthetic"
    assert dataroot.default_root() == home / "data" / "ade20k" / "ADEChallengeData2016"
    assert dataroot.status() == "missing"
    monkeypatch.setenv("REPRO_DATA", str(home / "elsewhere"))
    assert dataroot.default_root() == home / "elsewhere"
    assert synthetic.default_root() == root, "REPRO_DATA names the real dataset; the synthetic one stays put"
