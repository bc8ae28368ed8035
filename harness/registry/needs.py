"""What a config needs beyond mmseg and a CPU, read from its text (and its `_base_` files) without loading it.

Loading a config that imports a missing package (ConvNeXt and PoolFormer configs import `mmcls.models`) fails
inside mmcv; preflight reads these facts first so an entry that cannot run says why before anything starts.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

# decode heads whose inference calls an mmcv op that the CPU-ops build of mmcv implements only on the CPU
CUDA_OP_HEADS = {"PSAHead": "PSAMask"}
_IMPORTS = re.compile(r"custom_imports\s*=\s*dict\(\s*imports\s*=\s*(\[[^\]]*\]|'[^']*'|\"[^\"]*\")")
_FP16 = re.compile(r"^fp16\s*=", re.MULTILINE)
_HEAD = re.compile(r"type\s*=\s*['\"](\w+)['\"]")


@dataclass(frozen=True)
class Needs:
    imports: tuple[str, ...]      # modules the config's custom_imports names
    fp16: bool                    # the config sets `fp16 = dict(...)`: mmseg evaluates it with fp16 weights
    mmcv_ops: tuple[str, ...]     # mmcv ops with only CPU kernels in a CPU-ops mmcv build


def _bases(path: Path, text: str) -> list[Path]:
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [(path.parent / name).resolve() for name in names]
    return []


def config_texts(path: Path) -> list[str]:
    """The config's text and those of its `_base_` files, recursively (each file once)."""
    seen, texts, todo = set(), [], [Path(path).resolve()]
    while todo:
        current = todo.pop()
        if current in seen or not current.is_file():
            continue
        seen.add(current)
        text = current.read_text()
        texts.append(text)
        todo += _bases(current, text)
    return texts


def config_needs(path: Path) -> Needs:
    imports, fp16, ops = [], False, []
    for text in config_texts(path):
        for found in _IMPORTS.findall(text):
            value = ast.literal_eval(found)
            imports += [value] if isinstance(value, str) else list(value)
        fp16 = fp16 or bool(_FP16.search(text))
        ops += [CUDA_OP_HEADS[t] for t in _HEAD.findall(text) if t in CUDA_OP_HEADS]
    return Needs(tuple(dict.fromkeys(imports)), fp16, tuple(dict.fromkeys(ops)))
