"""The dataset registry (datasets/<id>/dataset.toml): ADE20K's record against mmseg and the reference files, and a
second dataset that exists only as a TOML file in a temporary registry, prepared, generated and checked by the
same harness code."""
import json
import re
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness import registry
from harness.cli import cli
from harness.errors import ReproError
from harness.fetch import dataroot, layout, synthetic
from harness.registry import datasets

TINY = '''
id = "tinyseg"
title = "TinySeg"
mmseg_type = "CustomDataset"
folder = "TinySegData"

[splits.train]
role = "train"
count = 40
images = "img/train"
annotations = "ann/train"
prefix = "t_"

[splits.val]
role = "val"
count = 10
images = "img/val"
annotations = "ann/val"
prefix = "v_"

[files]
digits = 4
image_suffix = ".png"
annotation_suffix = ".png"

[labels]
num_classes = 5
reduce_zero_label = false
ignore_index = 255
classes = ["road", "car", "tree", "sky", "person"]
'''


# ---------------------------------------------------------------------------------------------------- ADE20K

def test_ade20k_facts():
    ade = datasets.get("ade20k")
    assert (ade.title, ade.mmseg_type, ade.zoo_name, ade.folder) == ("ADE20K", "ADE20KDataset", "ADE20K",
                                                                     "ADEChallengeData2016")
    assert ade.counts == {"training": 20210, "validation": 2000}
    assert (ade.train_split, ade.val_split) == ("training", "validation")
    assert [(s.images, s.annotations, s.prefix) for s in ade.splits] == [
        ("images/training", "annotations/training", "ADE_train_"),
        ("images/validation", "annotations/validation", "ADE_val_")]
    assert (ade.digits, ade.image_suffix, ade.annotation_suffix) == (8, ".jpg", ".png")
    assert (ade.num_classes, ade.reduce_zero_label, ade.ignore_index, ade.raw_ignored) == (150, True, 255, 0)
    assert list(ade.raw_labels) == list(range(1, 151))
    assert ade.archive.folder == "ADEChallengeData2016" and ade.archive.url.endswith("/ADEChallengeData2016.zip")
    assert (ade.archive.md5, ade.archive.sha1) == ("7328b3957e407ddae1d3cbf487f149ef",
                                                   "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7")
    assert datasets.by_zoo_name()["ADE20K"] is ade


def test_ade20k_classes_in_the_authors_key_order(reference):
    metric = json.loads((reference / "eva02" / "eval_eva02_L_sz512_ss.json").read_text())["metric"]
    classes = datasets.get("ade20k").classes
    assert tuple(k[4:] for k in metric if k.startswith("IoU.")) == classes
    assert len(classes) == 150 and classes[7] == "bed "


def test_ade20k_classes_equal_the_reference_fact_sheet(reference):
    block = (reference / "ade20k_classes.txt").read_text()
    names = [n.strip("'") for _, n in re.findall(r"(\d+) ('[^']*'|[a-z ]+?) \d+/\d+/\d+", block)]
    assert tuple(names) == datasets.get("ade20k").classes


def test_canonical_names():
    ade = datasets.get("ade20k")
    assert ade.canonical_class("bed") == "bed "
    assert ade.canonical_class(" chest of drawers ") == "chest of drawers"
    assert ade.canonical_class("spaceship") is None


def test_ade20k_classes_equal_mmseg_when_it_imports():
    ade = datasets.get("ade20k")
    try:
        import mmseg.datasets
    except Exception as exc:  # noqa: BLE001 - mmseg needs torch + mmcv; the harness does not
        pytest.skip(f"mmseg not importable here ({type(exc).__name__})")
    mmseg_class = getattr(mmseg.datasets, ade.mmseg_type)
    assert tuple(mmseg_class.CLASSES) == ade.classes
    assert len(mmseg_class.PALETTE) == ade.num_classes


def test_synthetic_name_means_the_dataset_with_its_own_root(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_HOME", str(tmp_path))
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "real"))
    assert datasets.resolve("ade20k-synthetic") == (datasets.get("ade20k"), True)
    assert datasets.resolve("ade20k") == (datasets.get("ade20k"), False)
    assert datasets.data_root("ade20k") == tmp_path / "real"
    assert datasets.data_root("ade20k-synthetic") == tmp_path / "data" / "ade20k-synthetic" / "ADEChallengeData2016"


# ------------------------------------------------------------------------------------------------ errors

def test_unknown_id_suggests_close_ones():
    with pytest.raises(ReproError) as err:
        datasets.get("ade20kk")
    assert err.value.message == "Unknown dataset 'ade20kk'. Did you mean: ade20k? Available: ade20k"
    result = CliRunner().invoke(cli, ["prepare", "ade20kk"])
    assert result.exit_code == 2 and "Unknown dataset 'ade20kk'. Did you mean: ade20k?" in result.output


def _registry_with(tmp_path, text: str, name: str = "tinyseg"):
    (tmp_path / "datasets" / name).mkdir(parents=True)
    (tmp_path / "datasets" / name / "dataset.toml").write_text(text)
    return tmp_path / "datasets"


@pytest.mark.parametrize("change,field,what", [
    (lambda t: t.replace('title = "TinySeg"\n', ""), "title", "is missing"),
    (lambda t: t.replace("num_classes = 5", 'num_classes = "5"'), "labels.num_classes", "must be int, found '5'"),
    (lambda t: t.replace("reduce_zero_label = false", "reduce_zero_label = 0"), "labels.reduce_zero_label",
     "must be bool"),
    (lambda t: t.replace('"person"]', '"person", "bus"]'), "labels.classes", "must list num_classes = 5 names"),
    (lambda t: t.replace("count = 10", "count = 0"), "splits.val.count", "must be at least 1"),
    (lambda t: t.replace('role = "val"', 'role = "test"'), "splits.val.role", "must be one of train, val"),
    (lambda t: t.replace("digits = 4", "digits = 4\nsuffix = 1"), "files.suffix", "is not a dataset field"),
    (lambda t: t.replace('id = "tinyseg"', 'id = "other"'), "id", "'other' differs from its folder name"),
    (lambda t: t.replace("ignore_index = 255", "ignore_index = 3"), "labels.ignore_index", "must be a uint8 value that is no class"),
], ids=["missing", "type", "bool", "class-count", "count", "role", "unknown", "id", "ignore"])
def test_malformed_file_names_the_file_and_the_field(tmp_path, change, field, what):
    root = _registry_with(tmp_path, change(TINY))
    with pytest.raises(ReproError) as err:
        datasets.all_datasets(root)
    assert err.value.message.startswith(f"{root / 'tinyseg' / 'dataset.toml'}: field '{field}' {what}")
    assert "\n" not in err.value.one_line()


@pytest.mark.parametrize("old, new, field, what", [
    ("reduce_zero_label = false", 'reduce_zero_label = "false"', "labels.reduce_zero_label", "must be bool, found 'false'"),
    ('classes = ["road", "car", "tree", "sky", "person"]', 'classes = "road"', "labels.classes",
     "must be a list of str, found 'road'"),
    ("image_suffix =", "image_sufix =", "files.image_sufix", "is not a dataset field; did you mean 'files.image_suffix'?"),
    ("[labels]", "[label]", "label", "is not a dataset field; did you mean 'labels'?"),
    ('folder = "TinySegData"', 'folder = ["TinySegData"]', "folder", "must be a file name (str), found ['TinySegData']"),
], ids=["string-bool", "string-list", "misspelled", "misspelled-table", "list-name"])
def test_types_and_names_are_checked_strictly(tmp_path, old, new, field, what):
    root = _registry_with(tmp_path, TINY.replace(old, new, 1))
    with pytest.raises(ReproError) as err:
        datasets.all_datasets(root)
    assert err.value.message.startswith(f"{root / 'tinyseg' / 'dataset.toml'}: field '{field}' {what}")


@pytest.mark.parametrize("old, new, field", [
    ('folder = "TinySegData"', 'folder = "../../escaped"', "folder"),
    ('folder = "TinySegData"', 'folder = "/tmp/escaped"', "folder"),
    ('image_suffix = ".png"', 'image_suffix = "/../../../escaped.png"', "files.image_suffix"),
    ('annotation_suffix = ".png"', 'annotation_suffix = "/../x.png"', "files.annotation_suffix"),
    ('prefix = "t_"', 'prefix = "../../t_"', "splits.train.prefix"),
    ('images = "img/train"', 'images = "../../../escaped"', "splits.train.images"),
    ('annotations = "ann/val"', 'annotations = "/tmp/ann"', "splits.val.annotations"),
    ("[splits.val]", '[splits."../val"]', "splits.../val"),
    ("[labels]", '[archive]\nurl = "https://x/y.zip"\nfilename = "../y.zip"\n[labels]', "archive.filename"),
    ("[labels]", '[archive]\nurl = "https://x/y.zip"\nfilename = "y.zip"\nfolder = ".."\n[labels]', "archive.folder"),
], ids=["folder-dots", "folder-absolute", "image-suffix", "annotation-suffix", "prefix", "images", "annotations",
        "split-name", "archive-filename", "archive-folder"])
def test_fields_that_become_paths_cannot_leave_the_data_root(tmp_path, monkeypatch, old, new, field):
    """A dataset.toml from elsewhere with `../` in a folder, a prefix or a suffix is refused when read, naming the
    field, so the synthetic generator never writes outside its data root (issue 24)."""
    registry_root = _registry_with(tmp_path / "registry", TINY.replace(old, new, 1))
    monkeypatch.setenv("REPRO_DATASETS", str(registry_root))
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "home"))
    with pytest.raises(ReproError) as err:
        datasets.all_datasets()
    assert err.value.message.startswith(f"{registry_root / 'tinyseg' / 'dataset.toml'}: field '{field}' ")
    assert any(word in err.value.message for word in ("'..'", "absolute path", "separator"))
    result = CliRunner().invoke(cli, ["prepare", "tinyseg", "--synthetic", "4", "--val", "2",
                                      "--data-root", str(tmp_path / "inside" / "TinySegData")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "inside").exists(), "nothing written"
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.parent.glob("escaped*"))


def test_unreadable_toml_names_the_file(tmp_path):
    root = _registry_with(tmp_path, TINY + "[labels\n")
    with pytest.raises(ReproError, match=re.escape(f"cannot read {root / 'tinyseg' / 'dataset.toml'}")):
        datasets.all_datasets(root)


def test_a_changed_file_is_read_again(tmp_path):
    root = _registry_with(tmp_path, TINY)
    assert datasets.get("tinyseg", root).title == "TinySeg"
    path = root / "tinyseg" / "dataset.toml"
    path.write_text(TINY.replace('title = "TinySeg"', 'title = "TinySeg v2"'))
    import os
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert datasets.get("tinyseg", root).title == "TinySeg v2"


# ------------------------------------------------------------------------------- a dataset that is only data

@pytest.fixture
def tiny_registry(tmp_path, monkeypatch):
    """REPRO_DATASETS holding ADE20K (as shipped) and tinyseg (TINY), REPRO_HOME in tmp_path."""
    root = _registry_with(tmp_path, TINY)
    (root / "ade20k").mkdir()
    (root / "ade20k" / "dataset.toml").write_text(datasets.get("ade20k").file.read_text())
    monkeypatch.setenv("REPRO_DATASETS", str(root))
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REPRO_DATA", raising=False)
    return root


def test_a_second_dataset_is_found(tiny_registry):
    assert sorted(datasets.all_datasets()) == ["ade20k", "tinyseg"]
    tiny = datasets.get("tinyseg")
    assert tiny.file == tiny_registry / "tinyseg" / "dataset.toml"
    assert tiny.counts == {"train": 40, "val": 10} and tiny.archive is None and tiny.zoo_name is None
    assert (list(tiny.raw_labels), tiny.raw_ignored) == ([0, 1, 2, 3, 4], 255)
    assert tiny.synthetic_labels == (0, 1, 2, 3, 4) and tiny.synthetic_backgrounds == 2


def test_synthetic_data_and_layout_check_follow_the_file(tiny_registry, tmp_path):
    root = synthetic.generate(tmp_path / "TinySegData", 6, 3, seed=1, dataset="tinyseg")
    assert layout.check_layout(root, {"train": 6, "val": 3}, dataset="tinyseg") == {"train": 6, "val": 3}
    files = layout.list_files(root)
    assert "img/train/t_0001.png" in files and "ann/val/v_0003.png" in files
    assert not [f for f in files if f.startswith(("images/", "annotations/"))]
    seen = set()
    for path in root.glob("ann/*/*.png"):
        seen |= set(np.unique(np.asarray(Image.open(path))).tolist())
    assert seen <= {0, 1, 2, 3, 4, 255} and 255 in seen, "its own classes, its own ignored value"
    manifest = layout.read_manifest(root)
    assert manifest["dataset"] == "tinyseg" and manifest["counts"] == {"train": 6, "val": 3}
    assert dataroot.status(root) == "synthetic"
    assert dataroot.dataset_facts(root)["split"] == "val" and dataroot.dataset_facts(root)["num_images"] == 3
    # ADE20K's layout is not this one
    with pytest.raises(ReproError, match="ADE20K layout check failed.*images/training/: folder missing"):
        layout.check_layout(root, dataset="ade20k")
    with pytest.raises(ReproError, match=r"img/train/: 6 images, expected 40; img/val/: 3 images") as err:
        layout.check_layout(root, dataset="tinyseg")
    assert err.value.fix.endswith("meant to hold 6 train / 3 val images, pass --counts 6,3")


def test_its_label_range_is_checked(tiny_registry, tmp_path):
    root = synthetic.generate(tmp_path / "TinySegData", 4, 2, seed=2, dataset="tinyseg")
    ann = root / "ann/train/t_0002.png"
    labels = np.asarray(Image.open(ann)).copy()
    labels[0, 0] = 5
    Image.fromarray(labels, "L").save(ann)
    with pytest.raises(ReproError, match="TinySeg annotation check failed .*ann/train/t_0002.png: label value 5 "
                                         "outside 0..4 and 255"):
        layout.check_layout(root, {"train": 4, "val": 2}, dataset="tinyseg")


def test_prepare_from_its_zip_and_the_cli(tiny_registry, tmp_path):
    source = synthetic.generate(tmp_path / "src" / "TinySegData", 6, 3, seed=3, dataset="tinyseg")
    archive = tmp_path / "tinyseg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in layout.list_files(source):
            zf.write(source / f, f"TinySegData/{f}")
    runner = CliRunner()
    result = runner.invoke(cli, ["prepare", "tinyseg", "--zip", str(archive), "--counts", "6,3"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "home" / "data" / "tinyseg" / "TinySegData"
    assert f"TinySeg ready at {root}: 6 train / 3 val images" in result.output
    assert dataroot.status(root) == "ready"
    assert layout.read_manifest(root)["origin"]["kind"] == "tinyseg"
    assert runner.invoke(cli, ["prepare", "tinyseg", "--verify"]).exit_code == 0
    result = runner.invoke(cli, ["prepare", "tinyseg"])
    assert result.exit_code == 0, "a prepared root is kept"
    assert runner.invoke(cli, ["prepare", "tinyseg", "--synthetic", "4", "--val", "2"]).exit_code == 0
    assert dataroot.status(tmp_path / "home" / "data" / "tinyseg-synthetic" / "TinySegData") == "synthetic"
    # a dataset without an [archive] cannot be downloaded: it says so
    result = runner.invoke(cli, ["prepare", "tinyseg", "--data-root", str(tmp_path / "new"), "--counts", "6,3"])
    assert result.exit_code == 2 and "names no [archive] to download TinySeg from" in result.output


def test_a_reproduction_names_a_registered_dataset(tiny_registry, tmp_path, monkeypatch):
    reproductions = tmp_path / "reproductions"
    for name, dataset in (("on_tiny", "tinyseg"), ("on_tiny_syn", "tinyseg-synthetic")):
        (reproductions / name).mkdir(parents=True)
        (reproductions / name / "config.py").write_text("")
        (reproductions / name / "reproduction.toml").write_text(
            f'id = "{name}"\ntitle = "t"\nmodel = "m"\ndataset = "{dataset}"\n[protocols]\nss = "config.py"\n'
            "[training]\ngpus = 1\nnnodes = 1\nsamples_per_gpu = 1\ntotal_batch = 1\nmax_iters = 1\n")
    assert {r.dataset for r in registry.all_reproductions(reproductions).values()} == {"tinyseg", "tinyseg-synthetic"}
    bad = reproductions / "on_tiny" / "reproduction.toml"
    bad.write_text(bad.read_text().replace('"tinyseg"', '"tinyseeg"'))
    with pytest.raises(ReproError) as err:
        registry.all_reproductions(reproductions)
    assert err.value.message.startswith(f"{bad}: dataset: Unknown dataset 'tinyseeg'. Did you mean: tinyseg?")
    assert "\n" not in err.value.one_line()


ARCHIVE = '''
[archive]
url = "http://example.invalid/tiny.zip"
filename = "tiny.zip"
max_member_bytes = 1048576
max_compression_ratio = 20.5
max_total_bytes = 10485760
'''


def test_archive_limits_are_read_from_the_file(tmp_path):
    root = _registry_with(tmp_path, TINY + ARCHIVE)
    limits = datasets.get("tinyseg", root).limits
    assert (limits.max_member_bytes, limits.max_compression_ratio, limits.max_total_bytes) == (1 << 20, 20.5,
                                                                                              10 << 20)
    (tmp_path / "other").mkdir()
    plain = datasets.get("tinyseg", _registry_with(tmp_path / "other", TINY)).limits     # no [archive]: defaults
    assert (plain.max_member_bytes, plain.max_compression_ratio, plain.max_total_bytes) == (1 << 30, 100, 100 << 30)


@pytest.mark.parametrize("change,field,what", [
    (lambda t: t.replace("max_member_bytes = 1048576", 'max_member_bytes = "1 MiB"'), "archive.max_member_bytes",
     "must be int"),
    (lambda t: t.replace("max_compression_ratio = 20.5", "max_compression_ratio = 0"),
     "archive.max_compression_ratio", "must be positive"),
    (lambda t: t.replace("max_total_bytes = 10485760", "max_total_bytes = -1"), "archive.max_total_bytes",
     "must be positive"),
    (lambda t: t.replace("max_total_bytes = 10485760", "max_total_bytes = true"), "archive.max_total_bytes",
     "must be int"),
], ids=["type", "zero-ratio", "negative", "bool"])
def test_malformed_archive_limits_name_the_field(tmp_path, change, field, what):
    root = _registry_with(tmp_path, change(TINY + ARCHIVE))
    with pytest.raises(ReproError) as err:
        datasets.all_datasets(root)
    assert err.value.message.startswith(f"{root / 'tinyseg' / 'dataset.toml'}: field '{field}' {what}")
