"""A report of a run folder someone else made (issue 24): every file it embeds is the run folder's own, a decodable
image of sane size, or a visible note on the page (never a traceback, never the bytes of a file outside the run);
text drawn by matplotlib is never mathtext."""
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import cli
from harness.report.files import MAX_PIXELS
from harness.verify.importer import import_result

NOTE = 'id="skipped-files"'


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def _pictures(folder: Path, k: int, size=(64, 48)) -> dict:
    """An image, its ground truth and prediction as the engine writes them (JPEG + two label-map PNGs)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(k)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{k}_image.jpg")
    for name in ("gt", "pred"):
        Image.fromarray(rng.integers(0, 4, (size[1], size[0]), dtype=np.uint8), mode="L").save(folder / f"{k}_{name}.png")
    return {"image": f"{k}_image.jpg", "gt": f"{k}_gt.png", "pred": f"{k}_pred.png"}


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares WIDTH × HEIGHT (and whose body is a few bytes): a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def gallery_run(eva02, tmp_path):
    """An imported run with a gallery of two entries: a good one (0) and one the test spoils (1)."""
    def make(spoil, gallery_name="gallery/gallery.json"):
        run = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "run")
        entries = [{"label": label, "index": k, "image": f"ADE_val_{k}.jpg", "mIoU": 50.0, "aAcc": 80.0,
                    "regions_gt": [{"class": "wall", "share": 0.5}], "regions_pred": [{"class": "wall", "share": 0.4}],
                    "files": _pictures(run / "gallery", k)} for k, label in enumerate(("worst", "best"))]
        spoil(run, entries[1])
        (run / "gallery" / "gallery.json").write_text(json.dumps({"images": [{}, {}], "chosen": entries}))
        record = json.loads((run / "result.json").read_text())
        record["artifacts"]["gallery"] = gallery_name
        (run / "result.json").write_text(json.dumps(record))
        return run
    return make


def _secret(tmp_path) -> Path:
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(secret)
    return secret


def _report(run, tmp_path):
    result = run_cli("report", run, "-o", tmp_path / "reports")
    assert result.exit_code == 0, (result.output, result.exception)
    return next((tmp_path / "reports").glob("eva02_L_sz512_ss_*.html")).read_text()


def _one_row_and_note(page: str, note: str):
    assert page.count('<img class="thumb"') == 4, "the good entry's four panels are shown"
    assert page.count("data:image/jpeg") == 1, "only the good entry's photo is embedded"
    assert NOTE in page and note in page, page[page.find(NOTE):page.find(NOTE) + 600]


def test_a_picture_named_by_absolute_path_is_skipped_with_a_note(gallery_run, tmp_path):
    secret = _secret(tmp_path)
    run = gallery_run(lambda run, entry: entry["files"].update(image=str(secret)))
    page = _report(run, tmp_path)        # a long name is shown by its end: the tmp folder's length does not matter
    _one_row_and_note(page, "/outside/secret.png skipped: an absolute path, not a file of the run folder")
    assert re.search(r"gallery image (/|…)[^<]*/outside/secret\.png skipped", page)


def test_a_picture_named_with_dotdot_is_skipped_with_a_note(gallery_run, tmp_path):
    _secret(tmp_path)
    run = gallery_run(lambda run, entry: entry["files"].update(gt="../../outside/secret.png"))
    _one_row_and_note(_report(run, tmp_path), "gallery gt gallery/../../outside/secret.png skipped: it leaves the run "
                                              "folder (..)")


def test_a_link_out_of_the_run_folder_is_skipped_with_a_note(gallery_run, tmp_path):
    secret = _secret(tmp_path)

    def spoil(run, entry):
        (run / "gallery" / entry["files"]["image"]).unlink()
        (run / "gallery" / entry["files"]["image"]).symlink_to(secret)
    run = gallery_run(spoil)
    _one_row_and_note(_report(run, tmp_path), "gallery image gallery/1_image.jpg skipped: a link out of the run folder")


def test_a_gallery_file_outside_the_run_is_skipped_with_a_note(gallery_run, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"chosen": []}))
    run = gallery_run(lambda run, entry: None, gallery_name=str(outside))
    page = _report(run, tmp_path)
    assert 'id="gallery"' not in page and "data:image/jpeg" not in page
    assert re.search(r"gallery (/|…)[^<]*/outside\.json skipped: an absolute path, not a file of the run folder",
                     page)


def test_a_file_that_is_not_an_image_is_skipped_with_a_note(gallery_run, tmp_path):
    run = gallery_run(lambda run, entry: (run / "gallery" / entry["files"]["image"]).write_text("not a picture\n"))
    _one_row_and_note(_report(run, tmp_path), "gallery image 1_image.jpg skipped: not a decodable image")


def test_a_truncated_image_is_skipped_with_a_note(gallery_run, tmp_path):
    def spoil(run, entry):
        path = run / "gallery" / entry["files"]["gt"]
        path.write_bytes(path.read_bytes()[:60])
    _one_row_and_note(_report(gallery_run(spoil), tmp_path), "gallery gt 1_gt.png skipped: not a decodable image")


@pytest.mark.parametrize("side, note", [
    (16000, "skipped: its header declares more than the 40-megapixel limit"),
    (8000, "skipped: its header declares 8000 × 8000 pixels, more than the 40-megapixel limit")])
def test_an_image_of_insane_size_is_skipped_before_it_is_decoded(gallery_run, tmp_path, side, note):
    assert side * side > MAX_PIXELS
    run = gallery_run(lambda run, entry: _png_header(run / "gallery" / entry["files"]["pred"], side, side))
    _one_row_and_note(_report(run, tmp_path), f"gallery pred 1_pred.png {note}")


def test_a_log_named_outside_the_run_is_not_read(eva02, tmp_path):
    run = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "run")
    record = json.loads((run / "result.json").read_text())
    record["artifacts"]["log_json"] = str(eva02 / "train_eva02_B_sz512.log.json")   # real curves, not this run's
    (run / "result.json").write_text(json.dumps(record))
    page = _report(run, tmp_path)
    assert 'id="curves"' not in page
    assert f"log_json {eva02 / 'train_eva02_B_sz512.log.json'} skipped: an absolute path" in page


@pytest.mark.parametrize("reproduction", ["eva02_L_sz512$\\foo{$", "$x^{2}$ a_b$", "\\$100 $$"])
def test_dollars_in_names_are_drawn_as_text_not_mathtext(eva02, tmp_path, reproduction):
    runs = []
    for i in range(2):
        run = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / f"run{i}$\\foo{{$")
        record = json.loads((run / "result.json").read_text())
        record["reproduction"] = reproduction
        (run / "result.json").write_text(json.dumps(record))
        runs.append(run)
    result = run_cli("report", *runs, "-o", tmp_path / "reports", "--compare")
    assert result.exit_code == 0, (result.output, result.exception)
    page = (tmp_path / "reports" / "compare.html").read_text()
    assert "data:image/png" in page            # the comparison chart, with the names as its labels
    pages = list((tmp_path / "reports").glob("*_ss_*.html"))
    assert len(pages) == 2 and all('id="per-class-chart"' in p.read_text() for p in pages)
