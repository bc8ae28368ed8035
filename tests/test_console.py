"""The console: engine output becomes a few bar lines on a non-terminal, the whole output stays in console.log."""
import io
import sys
import textwrap

from harness.console import EngineOutput, PlainBar, track
from harness.run.launch import supervise

REFERENCE_LOG = "train_eva02_B_sz512.log"      # the authors' mmseg training log: 713 lines, 5 `Iter [N/60000]` ones


def feed_in_pieces(output: EngineOutput, data: bytes, size: int = 777) -> None:
    for start in range(0, len(data), size):           # a pipe hands over arbitrary pieces, not lines
        output.feed(data[start:start + size])
    output.close()


def test_an_mmseg_training_log_becomes_one_bar_line(reference, monkeypatch):
    monkeypatch.delenv("REPRO_PROGRESS_INTERVAL", raising=False)
    shown = io.StringIO()
    feed_in_pieces(EngineOutput(stream_all=False, out=shown), (reference / "eva02" / REFERENCE_LOG).read_bytes())
    lines = shown.getvalue().splitlines()
    assert len(lines) == 1, lines                     # the config dump, hook table and per-iteration lines: gone
    assert lines[0].lstrip().startswith("train: 250/60000 iters")
    assert "loss 3.538" in lines[0] and "lr 1.2e-06" in lines[0] and "\r" not in shown.getvalue()


def test_progress_lines_of_the_engine_and_mmcvs_bar(monkeypatch):
    """Our `[eval]` lines (harness/engine/progress.py) and mmcv's carriage-return bar, as a process prints them."""
    from harness.engine.progress import ProgressLines

    monkeypatch.setenv("REPRO_PROGRESS_INTERVAL", "0")       # a line per update, to see every state
    printed = io.StringIO()
    progress = ProgressLines("eval", 4, every_s=0, file=printed)
    for _ in range(4):
        progress.update()
    mmcv_bar = "".join(f"\r[{'>' * n}{' ' * (4 - n)}] {n}/4, 2.0 task/s, elapsed: 1s, ETA:     1s" for n in (1, 2, 3, 4))
    stream = printed.getvalue() + "noise that is not progress\n" + f"[    ] 0/4, elapsed: 0s, ETA:{mmcv_bar}\n"
    assert stream.count("[eval] ") == 4 and "4/4 images" in stream

    shown = io.StringIO()
    feed_in_pieces(EngineOutput(stream_all=False, out=shown), stream.encode(), size=13)
    lines = shown.getvalue().splitlines()
    assert [line.split("(")[0].strip() for line in lines] == [
        "eval: 1/4 images", "eval: 2/4 images", "eval: 3/4 images", "eval: 4/4 images",
        "validation: 1/4 images", "validation: 2/4 images", "validation: 3/4 images"]   # mmcv's: transient
    assert "noise" not in shown.getvalue()


def test_verbose_streams_everything(reference):
    data = (reference / "eva02" / REFERENCE_LOG).read_bytes()
    shown = io.BytesIO()
    terminal = io.TextIOWrapper(shown, write_through=True)
    feed_in_pieces(EngineOutput(stream_all=True, out=terminal), data)
    assert shown.getvalue() == data


def test_plain_bar_lines_are_spaced_by_the_interval(capsys):
    printed = io.StringIO()
    with PlainBar(1000, "hashing files", unit="files", file=printed, interval=3600) as bar:
        for _ in range(1000):
            bar.update()
    assert printed.getvalue().count("\n") == 1 and "1000/1000 files (100%)" in printed.getvalue()
    assert list(track(range(5), "quiet", leave=False)) == list(range(5))
    assert capsys.readouterr().out == ""          # a sub-phase (leave=False) that ends fast prints nothing


def test_supervise_keeps_the_whole_output_in_the_log_and_shows_the_bar(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("REPRO_VERBOSE", raising=False)
    monkeypatch.delenv("REPRO_PROGRESS_INTERVAL", raising=False)
    script = textwrap.dedent("""
        import sys
        for i in range(1, 201):
            print(f"mmseg - INFO - a table row {i}")
            sys.stdout.write(f"[eval] {i}/200 images, 100.00 img/s, ETA 0:00:01\\n")
        sys.stderr.write("a warning on stderr\\n")
    """)
    log = tmp_path / "console.log"
    assert supervise([sys.executable, "-c", script], log) == 0
    shown = capfd.readouterr().out.splitlines()
    assert len(shown) == 1 and shown[0].lstrip().startswith("eval: 200/200 images (100%)")
    lines = log.read_text().splitlines()      # after the command line, everything the process printed
    assert sum(line.startswith("mmseg - INFO - a table row") for line in lines) == 200
    assert sum(line.startswith("[eval] ") for line in lines) == 200 and lines[-1] == "a warning on stderr"


def test_supervise_verbose_streams_the_output(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("REPRO_VERBOSE", "1")
    assert supervise([sys.executable, "-c", "print('a table row')"], tmp_path / "console.log") == 0
    assert capfd.readouterr().out == "a table row\n"


def test_plain_lines_stay_about_a_dozen_however_slow_the_machine(monkeypatch):
    """A line per tenth of the way (30 s apart at least), one after 300 quiet seconds, one at the end."""
    import harness.console as console
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    # the demo's 800 iterations: 8 s, 13 min, 40 min (a loaded 2-core machine), 13 h
    for seconds_per_iter, most in ((0.01, 1), (1.0, 10), (3.0, 14), (60.0, 10 + 800 * 60 // 300)):
        printed = io.StringIO()
        bar = PlainBar(800, "train", unit="iters", file=printed, interval=30)
        for _ in range(800):
            clock[0] += seconds_per_iter
            bar.update()
        bar.close()
        lines = printed.getvalue().splitlines()
        assert 1 <= len(lines) <= most, (seconds_per_iter, lines)
        assert lines[-1].lstrip().startswith("train: 800/800 iters (100%)")
    printed = io.StringIO()
    bar = PlainBar(None, "downloading", unit="B", file=printed, interval=30)   # no total: every 30 s
    for _ in range(10):
        clock[0] += 10
        bar.update(1 << 20)
    assert len(printed.getvalue().splitlines()) == 3


def test_a_command_without_verbose_leaves_repro_verbose_in_charge(monkeypatch):
    """The flag's default must not override REPRO_VERBOSE for the rest of the process (it did: set_verbose(False))."""
    import harness.console as console
    monkeypatch.setattr(console, "_verbose", None)
    monkeypatch.setenv("REPRO_VERBOSE", "1")
    console.set_verbose(False)          # what `repro eval ...` without --verbose does
    assert console.verbose()
    console.set_verbose(True)
    monkeypatch.delenv("REPRO_VERBOSE")
    assert console.verbose()
