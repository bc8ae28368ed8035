"""Only what the harness made is ever replaced: a data root without our manifest is refused (--force included),
a synthetic dataset never replaces a real one, and REPRO_DATA does not move the synthetic default."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ReproError
from harness.fetch import dataroot, layout, synthetic

from .test_ade20k import hashes, make_zip


def prepare(*args):
    return CliRunner().invoke(cli, ["prepare", "ade20k", *args])


@pytest.fixture
def real_root(home, tmp_path):
    """A data root prepared from an archive (origin 'ade20k': what `repro prepare ade20k` makes of the real zip)."""
    z = make_zip(tmp_path / "ADEChallengeData2016.zip")
    root = tmp_path / "real" / "ADEChallengeData2016"
    result = prepare("--zip", str(z["path"]), "--data-root", str(root), *hashes(z))
    assert result.exit_code == 0, result.output
    assert dataroot.status(root) == "ready"
    return root


@pytest.mark.parametrize("how", ["synthetic", "zip"])
def test_force_never_deletes_a_folder_the_harness_did_not_make(home, tmp_path, how):
    root = tmp_path / "X"
    root.mkdir()
    (root / "notes.txt").write_text("the user's notes")
    if how == "synthetic":
        args = ["--synthetic", "4", "--data-root", str(root)]
    else:
        z = make_zip(tmp_path / "ADEChallengeData2016.zip")
        args = ["--zip", str(z["path"]), "--data-root", str(root), *hashes(z)]
    plain = prepare(*args)
    assert plain.exit_code == 2
    assert "--force" not in plain.output, "the refusal must not recommend the flag that would delete the folder"
    forced = prepare(*args, "--force")
    assert forced.exit_code == 2
    assert f"{root} holds files that `repro prepare` did not make" in forced.output
    assert len(forced.output.strip().splitlines()) == 1
    assert (root / "notes.txt").read_text() == "the user's notes"
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".X")], "no staging or old folder left"


def test_force_replaces_a_dataset_the_harness_made(home, tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    synthetic.generate(root, 4, 2)
    (root / "images/training/ADE_train_00000001.jpg").unlink()        # changed, but still ours
    result = prepare("--synthetic", "5", "--val", "2", "--data-root", str(root), "--force")
    assert result.exit_code == 0, result.output
    assert layout.read_manifest(root)["counts"] == {"training": 5, "validation": 2}


def test_synthetic_never_replaces_a_real_dataset(real_root):
    before = layout.read_manifest(real_root)["files_sha256"]
    result = prepare("--synthetic", "4", "--data-root", str(real_root), "--force")
    assert result.exit_code == 2
    assert "real ADE20K" in result.output and "never replaced by a synthetic" in result.output
    assert layout.read_manifest(real_root)["files_sha256"] == before
    with pytest.raises(ReproError, match="never replaced by a synthetic"):
        synthetic.generate(real_root, 4, force=True)
    assert dataroot.status(real_root) == "ready"


def test_repro_data_does_not_redirect_the_synthetic_default(real_root, home, monkeypatch):
    monkeypatch.setenv("REPRO_DATA", str(real_root))
    before = layout.read_manifest(real_root)["files_sha256"]
    result = prepare("--synthetic", "4", "--force")
    assert result.exit_code == 0, result.output
    synthetic_root = home / "data" / "ade20k-synthetic" / "ADEChallengeData2016"
    assert f"ready at {synthetic_root}" in result.output
    assert dataroot.status(synthetic_root) == "synthetic"
    assert layout.read_manifest(real_root)["files_sha256"] == before
    assert dataroot.status() == "ready" and dataroot.default_root() == real_root
