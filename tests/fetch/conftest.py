"""Fixtures for the fetch tests: a loopback file server, an isolated REPRO_HOME and a tiny reproduction whose
weights live on that server as on a Hugging Face endpoint."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

REVISION = "0123456789abcdef0123456789abcdef01234567"
REPO = "test-org/tiny"
SEG = "seg/tiny_seg.pth"
PT = "pt/tiny_pt.pt"


def blob(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """REPRO_HOME in tmp_path, no network beyond loopback, quiet huggingface_hub."""
    monkeypatch.setenv("REPRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return tmp_path / "home"


@pytest.fixture
def tiny(tmp_path, monkeypatch, server, home):
    """A reproduction 'tiny' whose released weights (no published hash) and pretrained weights (published
    sha256) are served by `server` at REPO@REVISION."""
    seg, pt = blob(3 << 20, 1), blob(1 << 20, 2)
    server.add_hf(REPO, REVISION, SEG, seg)
    server.add_hf(REPO, REVISION, PT, pt)
    root = tmp_path / "reproductions"
    folder = root / "tiny"
    folder.mkdir(parents=True)
    (folder / "config.py").write_text("")
    (folder / "reproduction.toml").write_text(f'''
id = "tiny"
title = "tiny"
model = "tiny"
dataset = "ade20k"
[protocols]
ss = "config.py"
[training]
gpus = 1
nnodes = 1
samples_per_gpu = 1
total_batch = 1
max_iters = 1
[weights]
repo = "{REPO}"
revision = "{REVISION}"
filename = "{SEG}"
approx_size = "3.1 MB"
[pretrained]
repo = "{REPO}"
revision = "{REVISION}"
filename = "{PT}"
sha256 = "{hashlib.sha256(pt).hexdigest()}"
''')
    nothing = root / "noweights"
    nothing.mkdir()
    (nothing / "config.py").write_text("")
    (nothing / "reproduction.toml").write_text((folder / "reproduction.toml").read_text()
                                               .replace('"tiny"', '"noweights"').split("[weights]")[0])
    monkeypatch.setenv("REPRO_REPRODUCTIONS", str(root))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    # huggingface_hub writes (and so can resume from) whole 10 MiB chunks; small ones keep the test files small
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    return {"seg": seg, "pt": pt, "seg_path": f"/{REPO}/resolve/{REVISION}/{SEG}",
            "pt_path": f"/{REPO}/resolve/{REVISION}/{PT}", "root": root}


@pytest.fixture(autouse=True)
def _no_stray_network(monkeypatch):
    # requests/httpx honour proxies from the environment; loopback must never go through one
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
