import shutil

import pytest

from harness import registry
from harness.errors import ReproError

PUBLISHED = {"eva02_B_sz512": 32, "eva02_L_sz512": 16, "eva02_L_sz640": 16}


def test_every_reproduction_loads_with_its_configs():
    reps = registry.all_reproductions()
    assert set(PUBLISHED) <= set(reps)
    for rep_id, batch in PUBLISHED.items():
        rep = reps[rep_id]
        assert rep.training.total_batch == batch
        assert rep.training.gpus * rep.training.nnodes * rep.training.samples_per_gpu == batch
        assert rep.config_path("ss").is_file()
        assert rep.weights.url.startswith("https://huggingface.co/Yuxin-CV/EVA-02/resolve/")
    assert reps["eva02_L_sz512"].config_path("ms").name == "config_ms.py"


def test_unknown_id_suggests_close_matches():
    with pytest.raises(ReproError) as err:
        registry.get("eva02_L_sz521")
    assert "Unknown reproduction 'eva02_L_sz521'. Did you mean: eva02_L_sz512" in err.value.message
    assert "Available:" in err.value.message


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ReproError, match="has no protocol 'ms'") as err:
        registry.get("eva02_B_sz512").config_path("ms")
    assert err.value.fix == "use one of: ss"


def test_id_must_match_folder(tmp_path):
    for name in ("a", "b"):
        shutil.copytree(registry.reproductions_root() / "eva02_B_sz512", tmp_path / name)
    (tmp_path / "a").rename(tmp_path / "eva02_B_sz512")
    text = (tmp_path / "b" / "reproduction.toml").read_text()
    (tmp_path / "b" / "reproduction.toml").write_text(text)
    with pytest.raises(ReproError, match="differs from its folder name 'b'"):
        registry.all_reproductions(tmp_path)


def test_missing_config_file_is_reported(tmp_path):
    shutil.copytree(registry.reproductions_root() / "eva02_B_sz512", tmp_path / "eva02_B_sz512")
    (tmp_path / "eva02_B_sz512" / "config.py").unlink()
    with pytest.raises(ReproError, match="protocol 'ss' names config.py, which does not exist"):
        registry.all_reproductions(tmp_path)


def _copy_with(tmp_path, old: str, new: str):
    """eva02_B_sz512 copied into tmp_path with one change to its reproduction.toml; returns that file."""
    folder = tmp_path / "eva02_B_sz512"
    shutil.copytree(registry.reproductions_root() / "eva02_B_sz512", folder)
    path = folder / "reproduction.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, message", [
    ('code = "', 'baseline = "false"\ncode = "', "field 'baseline' must be bool, found 'false'"),
    ('code = "', 'custom_imports = "mmcls.models"\ncode = "',
     "field 'custom_imports' must be a list of str, found 'mmcls.models'"),
    ('code = "', 'custom_imports = ["mmcls.models", 3]\ncode = "', "field 'custom_imports[1]' must be str, found 3"),
    ("title = ", "titel = ", "field 'titel' is not a reproduction field; did you mean 'title'?"),
    ("max_iters = ", "max_iter = ", "field 'training.max_iter' is not a reproduction field; did you mean "
                                    "'training.max_iters'?"),
    ("gpus = 4", 'gpus = "4"', "field 'training.gpus' must be int, found '4'"),
    ("gpus = 4", "gpus = true", "field 'training.gpus' must be int, found True"),
    ('[protocols]\nss = "config.py"', 'protocols = "config.py"', "field 'protocols' must be a table, found 'config.py'"),
    ("title = ", "# title = ", "field 'title' is missing"),
], ids=["string-bool", "string-list", "list-item", "misspelled", "misspelled-nested", "string-int", "bool-int",
        "int-table", "missing"])
def test_reproduction_toml_is_checked_strictly(tmp_path, old, new, message):
    path = _copy_with(tmp_path, old, new)
    with pytest.raises(ReproError) as err:
        registry.all_reproductions(tmp_path)
    assert err.value.message.startswith(f"{path}: {message}")
    assert "\n" not in err.value.one_line()


@pytest.mark.parametrize("old, new, field", [
    ('id = "eva02_B_sz512"', 'id = "../../x"', "id"),
    ('id = "eva02_B_sz512"', 'id = "/tmp/x"', "id"),
    ('dataset = "ade20k"', 'dataset = "../ade20k"', "dataset"),
    ('ss = "config.py"', 'ss = "../../../etc/passwd"', "protocols.ss"),
    ('ss = "config.py"', 'ss = "/etc/passwd"', "protocols.ss"),
    ('ss = "config.py"', '"../ss" = "config.py"', "protocols.../ss"),
    ('filename = "eva02/seg/', 'filename = "../../../', "weights.filename"),
    ('revision = "', 'revision = "../', "weights.revision"),
], ids=["id-dots", "id-absolute", "dataset", "config-dots", "config-absolute", "protocol-name", "weights-file",
        "revision"])
def test_fields_that_become_paths_stay_inside(tmp_path, old, new, field):
    path = _copy_with(tmp_path, old, new)
    with pytest.raises(ReproError) as err:
        registry.all_reproductions(tmp_path)
    assert err.value.message.startswith(f"{path}: field '{field}' ")
    assert any(word in err.value.message for word in ("'..'", "absolute path", "separator"))
