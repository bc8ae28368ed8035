"""`repro report`: self-contained HTML per run, an index, --compare, and a look at it in headless Chromium."""
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.run.record import read_result, write_result
from harness.verify.importer import import_result

CHROMIUM = Path("/usr/bin/chromium")


def repro(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def train_run(eva02, tmp_path) -> Path:
    """A run record as `repro train` writes it: curves come from its artifacts (log.json + text log)."""
    run_dir = tmp_path / "runs" / "train"
    (run_dir / "work").mkdir(parents=True)
    metric = json.loads((eva02 / "eval_eva02_B_sz512_ss.json").read_text())["metric"]
    lines = (eva02 / "train_eva02_B_sz512.log.json").read_text().splitlines()
    val = json.dumps({"mode": "val", "epoch": 1, "iter": 500, "lr": 0.0, **metric})
    (run_dir / "work" / "run.log.json").write_text("\n".join(lines + [val]) + "\n")
    shutil.copy(eva02 / "train_eva02_B_sz512.log", run_dir / "work" / "run.log")
    per_class = {}
    for key, value in metric.items():
        kind, _, name = key.partition(".")
        if name:
            per_class.setdefault(name, {})[kind] = value * 100
    write_result(run_dir, {
        "reproduction": "eva02_B_sz512", "protocol": "ss", "kind": "train", "status": "succeeded", "seed": 0,
        "metrics": {k: metric[k] * 100 for k in ("aAcc", "mIoU", "mAcc")}, "per_class": per_class,
        "launch": {"launcher": "torchrun", "nnodes": 1, "gpus": 4, "world_size": 4, "samples_per_gpu": 8,
                   "accumulate": 1, "total_batch": 32, "command": "repro train eva02_B_sz512 --gpus 4 --seed 0"},
        "environment": {"python": "3.11.7", "torch": "2.1.2", "mmcv": "1.7.2", "mmseg": "0.29.1"},
        "artifacts": {"log": "work/run.log", "log_json": "work/run.log.json"},
        "timing": {"images_per_s": None, "peak_memory_mib": 15035},        # the log's `memory: 15035` (MiB)
    })
    return run_dir


def _srcs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_run_pages_index_and_compare_are_self_contained(lowered_run, train_run, eva02, tmp_path):
    passing = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "runs" / "released")
    out = tmp_path / "reports"
    result = repro("report", lowered_run, passing, train_run, "-o", out, "--compare")
    assert result.exit_code == 0, result.output
    pages = sorted(p.name for p in out.glob("*.html"))
    assert pages == ["compare.html", "eva02_B_sz512_ss_train.html", "eva02_L_sz512_ss_lowered.html",
                     "eva02_L_sz512_ss_released.html", "index.html"]
    for page in out.glob("*.html"):
        html = page.read_text()
        # nothing to fetch: links go to sibling pages, images are data URIs
        for ref in _srcs(html):
            assert ref.startswith(("data:", "#")) or re.fullmatch(r"[\w.-]+\.html", ref), (page.name, ref[:80])
        assert "<script src" not in html and "stylesheet" not in html

    low = (out / "eva02_L_sz512_ss_lowered.html").read_text()
    assert "eva02_L_sz512 ss: mIoU 57.77 vs 59.77 published, |Δ| 2.00 outside ±1.40 — FAIL" in low
    assert "|Δ| 2.00 &gt; tolerance 1.40 [retrain] — source: EVA-02/seg/README.md" in low
    assert low.count('<tr><td class="n" data-v=') == 150                 # every class in the sortable table
    table = low[low.index('id="per-class-table"'):]
    assert table.index("<td>wall</td>") < table.index("<td>sky</td>")     # the worst class first
    assert low.count("data:image/png;base64,") == 2         # Δ IoU and per-class charts; no curves, no gallery
    assert 'id="delta-chart"' in low and 'id="gallery"' not in low     # an imported result has no pictures
    assert "repro import " in low and "--reproduction eva02_L_sz512 --protocol ss" in low

    train = (out / "eva02_B_sz512_ss_train.html").read_text()
    assert "at tier <b>retrain</b>" in train and "— PASS" in train
    assert 'id="curves"' in train and "repro train eva02_B_sz512 --gpus 4 --seed 0" in train
    assert "torchrun" in train and "0.29.1" in train

    index = (out / "index.html").read_text()
    assert all(f'href="{name}"' in index for name in pages if name != "index.html")
    compare = (out / "compare.html").read_text()
    assert 'id="compare-chart"' in compare and compare.count("<th class=\"n\">eva02_") >= 3
    # B-512 beside L-512: speed and memory where a record has them, "—" where it does not
    memory = compare[compare.index("<td>peak memory (MiB)</td>"):].split("</tr>")[0]
    assert memory.count('<td class="n">—</td>') == 2 and '<td class="n">15035.00</td>' in memory


def test_curves_come_from_the_log_artifacts_with_the_text_logs_lr(train_run):
    from harness.report import read_curves

    curves = read_curves(read_result(train_run), train_run)
    assert [r["iter"] for r in curves["train"]] == [50, 100, 150, 200, 250]
    assert curves["train"][0]["lr"] == 2.368e-07
    assert curves["val"][0]["step"] == 250 and curves["val"][0]["mIoU"] == pytest.approx(55.25)


def test_report_of_unverifiable_run_says_why(eva02, tmp_path):
    run = import_result(eva02 / "train_eva02_B_sz512.log.json", out_dir=tmp_path / "runs" / "log")
    out = tmp_path / "reports"
    assert repro("report", run, "-o", out).exit_code == 0
    html = (out / "eva02_B_sz512_ss_log.html").read_text()
    assert "NOT VERIFIED" in html and "has no metrics to verify" in html
    assert 'id="curves"' in html and ">55.25<" in html                   # expected values still shown


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(lowered_run, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from PIL import Image

    out = tmp_path / "reports"
    assert repro("report", lowered_run, "-o", out).exit_code == 0
    page_file = out / "eva02_L_sz512_ss_lowered.html"
    screenshot = lowered_run / "report-screenshot.png"
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1600})
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            verdict, chart = page.locator("#verdict"), page.locator("#per-class-chart")
            assert verdict.is_visible() and chart.is_visible()
            assert "FAIL" in verdict.inner_text() and "mIoU 57.77 vs 59.77 published" in verdict.inner_text()
            assert chart.evaluate("img => img.complete && img.naturalWidth > 300")
            delta = page.locator("#delta-chart")
            assert delta.is_visible() and delta.evaluate("img => img.complete && img.naturalWidth > 300")
            vbox, cbox = verdict.bounding_box(), delta.bounding_box()
            page.screenshot(path=str(screenshot), full_page=True)
            # the sortable table sorts: by class name ascending, 'airplane' comes first
            page.locator("#per-class-table th", has_text="class").click()
            assert page.locator("#per-class-table tbody tr").first.locator("td").nth(1).inner_text() == "airplane"
        finally:
            browser.close()
    assert problems == []
    image = Image.open(screenshot).convert("RGB")
    # the verdict box is drawn in the FAIL colours; the Δ chart holds red bars (losses: wall) and a green one (river)
    inside = image.getpixel((int(vbox["x"] + vbox["width"] - 20), int(vbox["y"] + vbox["height"] / 2)))
    assert inside == (0xff, 0xeb, 0xee)
    crop = image.crop((int(cbox["x"]), int(cbox["y"]), int(cbox["x"] + cbox["width"]), int(cbox["y"] + cbox["height"])))
    colours = {c for _, c in crop.getcolors(maxcolors=1 << 20)}
    assert (0xc6, 0x28, 0x28) in colours and (0x2e, 0x7d, 0x32) in colours


def test_an_eval_runs_single_val_line_draws_no_curves(tmp_path, eva02):
    from harness.report import read_curves

    run_dir = tmp_path / "eval"
    run_dir.mkdir()
    metric = json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())["metric"]
    (run_dir / "eval.log.json").write_text(json.dumps({"mode": "val", "epoch": 1, "iter": 2000, **metric}) + "\n")
    assert read_curves({"artifacts": {"log_json": "eval.log.json"}}, run_dir) is None
