"""The record every source of reproductions gives: our folders (folders.py) and mmseg's model zoo (zoo.py).

A reproduction is data, not code: an id, the config of each evaluation protocol (plus the protocol's settings, e.g.
the test-time augmentation of mmseg's --aug-test), where its weights come from, where its expected values come
from, and the modules its configs need imported (`custom_imports`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ReproError

OUR_MODULES = ("harness.engine.modules",)     # what our EVA-02 configs register (harness/engine/modules.py)


@dataclass(frozen=True)
class WeightsFile:
    """A file in a Hugging Face repo, pinned to a revision; sha256 where it is published."""
    repo: str
    revision: str
    filename: str
    approx_size: str = ""
    sha256: str | None = None
    size: int | None = None

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo}/resolve/{self.revision}/{self.filename}"


@dataclass(frozen=True)
class UrlWeights:
    """A file at a plain URL whose name ends in `-<first 8 hex digits of its sha256>.pth` (mmseg's publish_model)."""
    url: str
    sha256_prefix: str | None
    approx_size: str = ""
    sha256: str | None = None
    size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Training:
    gpus: int
    nnodes: int
    samples_per_gpu: int
    total_batch: int
    max_iters: int
    seed: int | None = None


@dataclass(frozen=True)
class ExpectedSource:
    """Published values read at run time (zoo entries): {protocol: {metric: value}} and where they were read."""
    values: dict
    source: str


@dataclass(frozen=True)
class Reproduction:
    id: str
    folder: Path
    title: str
    model: str
    dataset: str
    protocols: dict[str, str]            # protocol -> config file, relative to `folder`
    training: Training | None
    weights: WeightsFile | UrlWeights | None = None
    pretrained: WeightsFile | None = None
    baseline: bool = False               # True: expected numbers are the harness's own, not published
    paper: str = ""
    code: str = ""
    extra: dict = field(default_factory=dict)
    custom_imports: tuple[str, ...] = OUR_MODULES
    protocol_settings: dict = field(default_factory=dict)   # protocol -> job fields (e.g. {"test_aug": {...}})
    expected: ExpectedSource | None = None                   # None: the expected/ tables hold its values
    source: str = "folder"               # "folder" (reproductions/) or "mmseg-zoo"
    family: str = ""
    backbone: str = ""

    def config_path(self, protocol: str = "ss") -> Path:
        if protocol not in self.protocols:
            raise ReproError(f"reproduction '{self.id}' has no protocol '{protocol}'",
                             fix=f"use one of: {', '.join(sorted(self.protocols))}")
        return self.folder / self.protocols[protocol]

    def settings(self, protocol: str) -> dict:
        """What the protocol sets in the job besides its config (empty for our own folders)."""
        return dict(self.protocol_settings.get(protocol, {}))

    @property
    def train_config_path(self) -> Path:
        if self.training is None:
            raise ReproError(f"reproduction '{self.id}' has no published training recipe to retrain",
                             fix=f"evaluate its released weights with `repro eval {self.id}`")
        return self.folder / self.protocols["ss"]
