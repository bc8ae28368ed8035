"""Pictures from a real evaluation: the engine's gallery files and --show-dir PNGs, and the report that shows them
(in headless Chromium: every image decoded, nothing broken)."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
DEMO = "eva02_demo"
FAST = ["data.workers_per_gpu=1"]
VAL_IMAGES = 6


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A 2-step demo training run, then `repro eval` of its checkpoint with --show-dir --show-limit 3."""
    pytest.importorskip("mmseg.apis")
    from harness.fetch.synthetic import generate
    from harness.run.api import evaluate, train

    base = tmp_path_factory.mktemp("gallery")
    data = generate(base / "data" / "ADEChallengeData2016", num_train=8, num_val=VAL_IMAGES, seed=0)
    trained = train(DEMO, max_iters=2, checkpoint_interval=2, eval_interval=1000, data_root=data,
                    work_dir=base / "train", cfg_options=FAST, echo=False)
    checkpoint = Path(trained["_run_dir"]) / trained["artifacts"]["final_checkpoint"]
    record = evaluate(DEMO, checkpoint=checkpoint, data_root=data, work_dir=base / "eval", cfg_options=FAST,
                      show_dir=base / "show", show_limit=3, echo=False)
    return {"record": record, "run": Path(record["_run_dir"]), "show": base / "show", "data": data,
            "checkpoint": checkpoint, "base": base}


def _png_classes(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as image:
        assert image.mode == "P"                          # palette: ADE20K colours, pixel value = class
        return np.asarray(image)


def test_eval_writes_the_gallery_and_the_show_dir(evaluated):
    record, run = evaluated["record"], evaluated["run"]
    arts = record["artifacts"]
    assert arts["gallery"] == "gallery/gallery.json" and arts["show_dir"] == str(evaluated["show"])
    assert arts["show_count"] == 3
    document = json.loads((run / arts["gallery"]).read_text())

    scores = [image["mIoU"] for image in document["images"]]
    assert len(scores) == VAL_IMAGES and all(s is None or 0 <= s <= 100 for s in scores)
    chosen = document["chosen"]
    by_label = {entry["label"]: entry for entry in chosen}
    known = [s for s in scores if s is not None]
    assert by_label["worst"]["mIoU"] == min(known) and by_label["best"]["mIoU"] == max(known)
    assert [e["index"] for e in chosen] == sorted({e["index"] for e in chosen}, key=[e["index"] for e in chosen].index)
    for entry in chosen:
        files = {key: run / "gallery" / name for key, name in entry["files"].items()}
        gt, pred = _png_classes(files["gt"]), _png_classes(files["pred"])
        assert gt.shape == pred.shape and pred.max() < 150
        assert entry["regions_gt"] and entry["regions_gt"][0]["share"] >= entry["regions_gt"][-1]["share"]
        # the gallery's prediction, made again after the loop, is the loop's own (--show-dir saved it)
        shown = evaluated["show"] / Path(entry["image"]).with_suffix(".png").name
        if entry["index"] < 3:
            assert np.array_equal(_png_classes(shown), pred)

    # --show-dir: the first 3 val images in dataset order, named like them
    names = sorted(p.name for p in evaluated["show"].glob("*.png"))
    images = sorted(p.name for p in (evaluated["data"] / "images" / "validation").glob("*.jpg"))
    assert names == [Path(n).with_suffix(".png").name for n in images[:3]]


def test_show_limit_without_show_dir_is_refused(evaluated):
    result = CliRunner().invoke(cli, ["eval", DEMO, "--checkpoint", str(evaluated["checkpoint"]), "--data-root",
                                      str(evaluated["data"]), "--show-limit", "2", "--work-dir",
                                      str(evaluated["base"] / "refused")])
    assert result.exit_code == 2
    assert "--show-limit needs --show-dir" in result.output and not (evaluated["base"] / "refused").exists()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_gallery_images_decode_in_headless_chromium(evaluated, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["report", str(evaluated["run"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page_file = next(p for p in out.glob("*.html") if p.name != "index.html")
    html = page_file.read_text()
    rows = len(json.loads((evaluated["run"] / "gallery" / "gallery.json").read_text())["chosen"])
    assert html.count('<img class="thumb"') == 4 * rows and 'id="no-delta"' in html   # the demo has no per-class table
    screenshot = evaluated["base"] / "gallery-screenshot.png"
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                          "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            gallery = page.locator("#gallery")
            gallery.scroll_into_view_if_needed()
            assert gallery.is_visible()
            widths = page.eval_on_selector_all("#gallery img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) == 4 * rows and all(w > 0 for w in widths), widths
            broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length")
            assert broken == 0
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    print(f"gallery screenshot: {screenshot}")
