"""The ledger's chunks (harness/ledger/store.py): written atomically as images finish, merged in index order, and
the summary metrics computed from their int64 sums whatever the split."""
from __future__ import annotations

import numpy as np
import pytest

from harness.ledger import store
from harness.ledger.store import ChunkWriter, LedgerInvalid, from_rows, metrics_percent, read_parts

C = 5


def _areas(rng, pixels: int) -> np.ndarray:
    """(4, C) areas of a plausible image: intersect <= pred, label; union = pred + label - intersect."""
    label = rng.multinomial(pixels, np.full(C, 1 / C))
    pred = rng.multinomial(pixels, np.full(C, 1 / C))
    inter = np.minimum(label, pred) // 2
    return np.stack([inter, pred + label - inter, pred, label]).astype(np.int64)


def _rows(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(i, f"img_{i:03d}.jpg", 100 + i, _areas(rng, 100 + i)) for i in range(n)]


def test_chunks_every_n_images_continue_their_numbering_and_merge_in_index_order(tmp_path):
    parts = tmp_path / "ledger.parts"
    rows = _rows(10)
    writer = ChunkWriter(parts, rank=1, every_images=3, every_s=3600)
    for row in rows[5:]:
        writer.add(*row)
    assert [p.name for p in store.chunk_paths(parts)] == ["rank1-000000.npz"]    # 3 rows; 2 still wait
    writer.flush()
    again = ChunkWriter(parts, rank=1, every_images=3, every_s=3600)               # a later session of rank 1
    for row in rows[:5]:
        again.add(*row)
    again.flush()
    assert [p.name for p in store.chunk_paths(parts)] == [f"rank1-{k:06d}.npz" for k in range(4)]
    assert not list(parts.glob(".*"))                                               # no temporary left over
    ledger = read_parts(parts)
    assert ledger.index.tolist() == list(range(10))
    assert ledger.names.tolist() == [r[1] for r in rows] and ledger.pixels.tolist() == [r[2] for r in rows]
    assert np.array_equal(ledger.union[7], rows[7][3][1])


def test_a_chunk_is_due_after_its_time_even_with_few_images(tmp_path, monkeypatch):
    writer = ChunkWriter(tmp_path, rank=0, every_images=100, every_s=30)
    clock = [1000.0]
    monkeypatch.setattr(store.time, "monotonic", lambda: clock[0])
    writer.last = clock[0]
    assert not writer.due(waiting=5)
    clock[0] += 31
    assert writer.due(waiting=5) and not writer.due(waiting=0)


def test_the_same_image_in_two_chunks_is_refused(tmp_path):
    rows = _rows(3)
    for rank in (0, 1):
        writer = ChunkWriter(tmp_path, rank=rank, every_images=10, every_s=3600)
        writer.add(*rows[1])
        writer.flush()
    with pytest.raises(LedgerInvalid, match="the same image twice"):
        read_parts(tmp_path)


def test_metrics_from_the_sums_do_not_depend_on_the_split():
    rows = _rows(40, seed=3)
    whole = from_rows(*zip(*[(i, n, p, a) for i, n, p, a in rows]))
    halves = store.concat([from_rows(*zip(*rows[k::2])) for k in (1, 0)])
    assert metrics_percent(whole, "abcde") == metrics_percent(halves, "abcde")
    inter, union = whole.intersect.sum(0), whole.union.sum(0)
    metrics, per_class = metrics_percent(whole, "abcde")
    assert per_class["c"]["IoU"] == pytest.approx(inter[2] / union[2] * 100, rel=1e-6)
    assert metrics["aAcc"] == pytest.approx(inter.sum() / whole.label.sum() * 100, rel=1e-6)


def test_a_class_without_pixels_is_none_and_left_out_of_the_means():
    areas = np.zeros((1, 4, 2), dtype=np.int64)
    areas[0, :, 0] = [3, 5, 4, 4]
    metrics, per_class = metrics_percent(from_rows([0], ["a.jpg"], [4], areas), ["x", "y"])
    assert per_class["y"] == {"IoU": None, "Acc": None}
    assert metrics["mIoU"] == pytest.approx(60.0) and metrics["mAcc"] == pytest.approx(75.0)


def test_an_incomplete_ledger_names_what_is_missing():
    ledger = from_rows(*zip(*[r for r in _rows(6) if r[0] != 4]))
    with pytest.raises(LedgerInvalid, match=r"holds 5 of the 6 images \(missing e.g. \[4\]\)"):
        store.check_complete(ledger, 6)


def test_the_same_ledger_is_the_same_bytes_and_numpy_opens_it(tmp_path):
    ledger = from_rows(*zip(*_rows(4)))
    first = store.write_ledger(tmp_path / "a.npz", ledger).read_bytes()
    assert store.write_ledger(tmp_path / "b.npz", ledger).read_bytes() == first
    with np.load(tmp_path / "a.npz") as data:
        assert sorted(data.files) == sorted(store.ARRAYS) and data["union"].dtype == np.int64
