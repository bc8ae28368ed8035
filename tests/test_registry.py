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
