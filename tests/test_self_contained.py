"""A clone of the repository is all the tests and docs need: no file points outside it, and the test data is
exactly what tests/data/PROVENANCE.md says it is."""
import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from golden_codec import decode, upsample

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

OUTSIDE = b"../" + b"shared"     # spelled in two pieces so that this file does not match itself


def project_files() -> list[str]:
    """Tracked files plus new files git would add (untracked, not ignored)."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, check=True).stdout
    return sorted({name for name in listing.decode().split("\0") if name and (REPO / name).is_file()})


def test_no_project_file_points_outside_the_repository():
    files = project_files()
    assert "tests/data/PROVENANCE.md" in files and len(files) > 50
    offenders = [f"{name}:{line}" for name in files
                 for line, text in enumerate((REPO / name).read_bytes().splitlines(), 1) if OUTSIDE in text]
    assert not offenders, f"files that send the reader outside the repository: {offenders}"


def provenance_table() -> dict[str, tuple[int, str]]:
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|$", (DATA / "PROVENANCE.md").read_text(), re.M)
    return {path: (int(size), sha) for path, size, sha in rows}


def test_every_data_file_is_listed_in_provenance_with_its_size_and_hash():
    table = provenance_table()
    present = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file()} - {"PROVENANCE.md"}
    assert present == set(table), f"unlisted: {sorted(present - set(table))}, missing: {sorted(set(table) - present)}"
    for path, (size, sha) in table.items():
        data = (DATA / path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), f"{path} differs from PROVENANCE.md"


def test_golden_expected_decodes_to_the_authors_arrays(golden_expected):
    assert sorted(golden_expected) == sorted(
        ["crop_input", "crop_logits", "feat0", "feat1", "feat2", "feat3", "ms_aug_shapes", "ms_pred", "ss_input",
         "ss_logits_shape", "ss_logits_sub4", "ss_pred"])
    assert golden_expected["crop_logits"].shape == (1, 150, 128, 128)
    assert golden_expected["crop_logits"].dtype == np.float32


def test_a_single_flipped_bit_in_the_golden_file_is_refused():
    stored = dict(np.load(DATA / "golden" / "mini" / "expected.npz"))
    stored["crop_logits_xor"] = stored["crop_logits_xor"].copy()
    stored["crop_logits_xor"][0, 7, 50, 60] ^= 1
    with pytest.raises(ValueError, match="crop_logits"):
        decode(stored)


def test_codec_upsampling_is_torchs_bilinear():
    """The stored 32x32 map is what the decode head produced: torch's resize of it is the authors' crop_logits."""
    import torch
    import torch.nn.functional as F
    source = np.load(DATA / "golden" / "mini" / "expected.npz")["crop_logits_source"]
    ours = upsample(source)
    theirs = F.interpolate(torch.from_numpy(source), size=(128, 128), mode="bilinear", align_corners=False).numpy()
    assert np.abs(ours - theirs).max() <= 1e-6 * max(1.0, float(np.abs(theirs).max()))
