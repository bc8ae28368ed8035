"""`repro compare` on runs with ledgers: the paired part (Δ with paired bootstrap intervals, classes, the images
that moved most), and why runs on different images or without ledgers are not paired."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from harness.ledger import runs
from harness.run.record import read_result, write_result
from harness.verify.importer import import_result

from .synthetic import ledger_of

PLANTED = (3, 17, 18, 41, 58)


def _planted(ledger, images=PLANTED, steal=(400, 300, 250, 150, 90)):
    """The same ledger with, in each planted image, `steal` pixels of its largest class predicted as class 0."""
    inter, pred, label = (a.copy() for a in (ledger.intersect, ledger.pred, ledger.label))
    for i, k in zip(images, steal):
        c = int(np.argmax(inter[i, 1:])) + 1
        inter[i, c] -= k
        pred[i, c] -= k
        pred[i, 0] += k
    return ledger_of(inter, pred, label, names=ledger.names, pixels=ledger.pixels)


def _pair(a, b):
    return runs.pair_runs(a, read_result(a), b, read_result(b), ("A", "B"), [f"c{i}" for i in range(150)])


def _block(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("paired over the same val images"))
    return lines[start:]


def test_a_run_against_itself_moves_by_zero_with_a_zero_width_interval(repro, make_run, ade_dist, tmp_path):
    base = make_run(ade_dist.draw(60, seed=1))
    twin = shutil.copytree(base, tmp_path / "runs" / "twin")
    pair = _pair(base, twin)
    assert pair.why_not is None and pair.moved == []
    for interval in pair.paired.delta.values():
        assert (interval.value, interval.lo, interval.hi) == (0.0, 0.0, 0.0) and not interval.excludes_zero
    result = repro("compare", base, twin, "-o", tmp_path / "reports")
    assert result.exit_code == 0, result.output
    block = _block(result.output)
    assert "Δ mIoU 0.00 [0.00, 0.00];" in block[2] and "excludes 0" not in block[2]
    assert "no image moved" in block[3]
    html = (tmp_path / "reports" / "compare.html").read_text()
    assert 'id="paired"' in html and "No image moved" in html


def test_a_planted_change_on_five_images_names_exactly_those(repro, make_run, ade_dist, tmp_path):
    ledger = ade_dist.draw(60, seed=2)
    base, changed = make_run(ledger), make_run(_planted(ledger))
    pair = _pair(base, changed)
    planted = [str(ledger.names[i]) for i in PLANTED]
    assert sorted(m["image"] for m in pair.moved) == planted       # nothing else moved
    moves = [max(abs(m["delta_acc"]), abs(m["delta_miou"])) for m in pair.moved]
    assert moves == sorted(moves, reverse=True) and moves[-1] > 0  # largest change first
    assert all(m["delta_acc"] < 0 and m["delta_miou"] < 0 for m in pair.moved)
    assert pair.paired.delta["aAcc"].value < 0 and pair.paired.delta["aAcc"].hi <= 0
    result = repro("compare", base, changed, "-o", tmp_path / "reports")
    moved_line = next(line for line in _block(result.output) if "images moved most" in line)
    assert [name for name in ledger.names.tolist() if name in moved_line] == planted
    html = (tmp_path / "reports" / "compare.html").read_text()
    assert all(name in html for name in planted)
    assert sum(str(name) in html for name in ledger.names.tolist()) == 5
    assert "No thumbnails: both runs need their predictions kept" in html


def test_moved_images_get_thumbnails_when_both_runs_kept_predictions(repro, make_run, ade_dist, tmp_path):
    ledger = ade_dist.draw(60, seed=3)
    shows = [tmp_path / "show_a", tmp_path / "show_b"]
    rng = np.random.default_rng(0)
    for k, folder in enumerate(shows):
        folder.mkdir()
        for i in PLANTED:
            Image.fromarray(rng.integers(0, 150, (24, 32), dtype=np.uint8) * k, mode="L").convert("P").save(
                folder / ledger.names[i].replace(".jpg", ".png"))
    base = make_run(ledger, artifacts={"show_dir": str(shows[0])})
    changed = make_run(_planted(ledger), artifacts={"show_dir": str(shows[1])})
    assert repro("compare", base, changed, "-o", tmp_path / "reports").exit_code == 0
    html = (tmp_path / "reports" / "compare.html").read_text()
    for i in PLANTED:
        assert f'alt="changed pixels of {ledger.names[i]}"' in html and f'alt="first run of {ledger.names[i]}"' in html


def test_a_kept_prediction_that_is_no_sane_image_gets_no_thumbnails_and_no_traceback(repro, make_run, ade_dist,
                                                                                       tmp_path):
    """A show_dir picture is read as the gallery's are (harness/report/files.py): a header declaring a decompression
    bomb's size, or bytes that are no image, leave that image without thumbnails; the others keep theirs."""
    import struct
    import zlib

    ledger = ade_dist.draw(60, seed=3)
    shows = [tmp_path / "show_a", tmp_path / "show_b"]
    rng = np.random.default_rng(0)
    for k, folder in enumerate(shows):
        folder.mkdir()
        for i in PLANTED:
            Image.fromarray(rng.integers(0, 150, (24, 32), dtype=np.uint8) * k, mode="L").convert("P").save(
                folder / ledger.names[i].replace(".jpg", ".png"))
    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)          # 3.6 gigapixels declared
    bomb = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + b"IHDR" + header
            + struct.pack(">I", zlib.crc32(b"IHDR" + header)))
    (shows[0] / ledger.names[PLANTED[0]].replace(".jpg", ".png")).write_bytes(bomb)
    (shows[1] / ledger.names[PLANTED[1]].replace(".jpg", ".png")).write_bytes(b"not a png")
    base = make_run(ledger, artifacts={"show_dir": str(shows[0])})
    changed = make_run(_planted(ledger), artifacts={"show_dir": str(shows[1])})
    result = repro("compare", base, changed, "-o", tmp_path / "reports")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "reports" / "compare.html").read_text()
    for i in PLANTED[:2]:
        assert f'alt="first run of {ledger.names[i]}"' not in html
    for i in PLANTED[2:]:
        assert f'alt="changed pixels of {ledger.names[i]}"' in html


def test_runs_on_different_images_are_not_paired_and_say_why(repro, make_run, ade_dist, tmp_path):
    ledger = ade_dist.draw(60, seed=4)
    fewer = ledger_of(ledger.intersect[:55], ledger.pred[:55], ledger.label[:55], names=ledger.names[:55])
    base, short = make_run(ledger), make_run(fewer)
    result = repro("compare", base, short, "-o", tmp_path / "reports")
    assert result.exit_code == 0
    why = ("the ledgers list different val images: 60 vs 55 images, 5 only in the first "
           f"(e.g. {ledger.names[55]})")
    assert _block(result.output)[2] == f"  not paired: {why}"
    html = (tmp_path / "reports" / "compare.html").read_text()
    assert f"Not paired: {why}." in html


def test_a_run_without_a_ledger_or_on_other_data_is_not_paired(repro, make_run, ade_dist, reference, tmp_path):
    base = make_run(ade_dist.draw(40, seed=5))
    imported = import_result(reference / "eva02" / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "imported")
    other_data = make_run(ade_dist.draw(40, seed=5))
    record = read_result(other_data)
    record["dataset"]["manifest_sha256"] = "cd" * 32
    write_result(other_data, {k: v for k, v in record.items() if not k.startswith("_")})
    result = repro("compare", base, imported, other_data, "-o", tmp_path / "reports")
    assert result.exit_code == 0
    block = _block(result.output)
    assert any(line.endswith("has no ledger: an imported result carries no per-image ledger") for line in block)
    assert f"  not paired: the runs read different data (data manifest sha256 {'ab' * 6}… vs {'cd' * 6}…)" in block


def test_same_images_in_another_order_are_aligned_by_name(make_run, ade_dist):
    ledger = ade_dist.draw(30, seed=6)
    order = np.random.default_rng(1).permutation(30)
    shuffled = ledger_of(ledger.intersect[order], ledger.pred[order], ledger.label[order], names=ledger.names[order])
    pair = _pair(make_run(ledger), make_run(shuffled))
    assert pair.why_not is None and pair.moved == [] and pair.paired.delta["mIoU"].width == 0


@pytest.mark.parametrize("bad", ["missing", "changed"])
def test_a_broken_ledger_is_named_not_paired(make_run, ade_dist, bad):
    ledger = ade_dist.draw(20, seed=7)
    base, other = make_run(ledger), make_run(ledger)
    if bad == "missing":
        (other / "ledger.npz").unlink()
    else:
        (other / "ledger.npz").write_bytes(b"not a zip")
    pair = _pair(base, other)
    assert pair.paired is None and pair.why_not.startswith("B: ")
    assert ("is missing" if bad == "missing" else "sha256 differs") in pair.why_not
    assert json.loads((other / "result.json").read_text())["ledger"]["file"] == "ledger.npz"
