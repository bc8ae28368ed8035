"""The evaluation loop (mmseg's single_gpu_test / multi_gpu_test with pre_eval), its metrics and its outputs."""
from __future__ import annotations

import json
import time
from pathlib import Path

from harness.engine.distributed import sync_bn_to_bn, wrap_model
from harness.engine.rows import IndexShard, LedgerSink, gather_rows


def evaluate_loader(model, data_loader, info: dict, tmpdir: str | None = None,
                    precision: str = "fp32", on_prediction=None, sink: LedgerSink | None = None) -> tuple[list, float]:
    """Our test loop: mmseg's single_gpu_test / multi_gpu_test with pre_eval=True, in one function.

    Per batch: forward with rescale, `dataset.pre_eval` (area histograms per image), progress on rank 0; each
    image's row goes to the ledger `sink` as it finishes. Then the rows of all ranks are gathered (mmcv's
    collect_results_gpu / _cpu). Returns (rows by dataset index on rank 0 / [] elsewhere, seconds of the loop).
    bf16 wraps the forward in autocast.
    """
    import numpy as np
    import torch

    from harness.engine.precision import forward_context
    from harness.engine.progress import ProgressLines

    model.eval()
    dataset = data_loader.dataset
    sink = sink or LedgerSink(dataset, IndexShard(list(range(len(dataset)))))
    bar = ProgressLines("eval", len(data_loader) * info["world_size"]) if info["rank"] == 0 else None
    start = time.perf_counter()
    for batch_indices, data in zip(data_loader.batch_sampler, data_loader):
        with torch.no_grad(), forward_context(precision, info["device"]):
            result = model(return_loss=False, rescale=True, **data)
        if on_prediction is not None:   # --show-dir
            for index, pred in zip(batch_indices, result):
                on_prediction(index, pred)
        for index, pred, areas in zip(batch_indices, result, dataset.pre_eval(result, indices=batch_indices)):
            sink.add(index, np.asarray(pred).size, torch.stack(list(areas)).long().numpy())
        if bar is not None:
            bar.update(len(result) * info["world_size"])
        sink.check_stop()
    rows = gather_rows(sink.rows, info, tmpdir)
    return rows, time.perf_counter() - start


def metrics_percent(rows_or_ledger, class_names) -> tuple[dict, dict]:
    """aAcc/mIoU/mAcc and per-class IoU/Acc in percent at full precision (mmseg's formulas, no rounding), from
    the int64 sums of a ledger (or of rows, which are made into one)."""
    from harness.ledger.store import Ledger, from_rows
    from harness.ledger.store import metrics_percent as from_ledger
    ledger = rows_or_ledger
    if not isinstance(ledger, Ledger):
        index, pixels, areas = zip(*ledger) if ledger else ((), (), ())
        ledger = from_rows(index, [""] * len(index), pixels, list(areas))
    return from_ledger(ledger, class_names)


def _eval_json_name(protocol: str) -> str:
    kind = "multi_scale" if protocol == "ms" else "single_scale"
    return f"eval_{kind}_{time.strftime('%Y%m%d_%H%M%S', time.localtime())}.json"


def _write_eval_json(run_dir: Path, protocol: str, config: str, metric: dict) -> str:
    import mmcv
    name = _eval_json_name(protocol)
    mmcv.dump({"config": config, "metric": metric}, str(run_dir / name), indent=4)
    return name


def final_evaluation(model, cfg, info: dict, run_dir: Path, job: dict, logger) -> dict:
    """Evaluate on data.test with the job's engine (fast: harness/engine/evaluate_fast.py; stock: our copy of
    mmseg's loop above) and precision, continuing from the images the run's ledger chunks already hold; rank 0
    writes ledger.npz and the eval JSON; return metrics for engine.json."""
    import numpy as np
    import torch
    from mmseg.datasets import build_dataset

    from harness.engine.precision import set_matmul_precision
    from harness.ledger import resume as ledger_resume
    from harness.ledger.store import LEDGER_FILE, PARTS_DIR, ChunkWriter, check_complete, concat, from_rows

    engine, precision = job.get("eval_engine") or "stock", job.get("precision") or "fp32"
    set_matmul_precision(precision)
    dataset = build_dataset(cfg.data.test, {"test_mode": True})
    tmpdir = str(run_dir / ".dist_test")
    workers = cfg.data.get("workers_per_gpu", 0)
    show = _show_dir(job, dataset)
    parts = run_dir / PARTS_DIR
    batch_size = None
    if engine == "fast":
        from harness.engine.evaluate_fast import window_batch
        batch_size = window_batch(info, job.get("eval_batch_size") or ledger_resume.window_batch_of(parts))
    earlier, session = _start_session(parts, job, dataset, info, batch_size)
    done = set(earlier.index.tolist()) if earlier is not None else set()
    remaining = [i for i in range(len(dataset)) if i not in done]
    if info["rank"] == 0 and done:
        logger.info(f"ledger: {len(done)} of {len(dataset)} images done in {session - 1} earlier session(s); "
                    f"evaluating the other {len(remaining)}")
    shard = IndexShard(remaining, info["world_size"], info["rank"])
    sink = LedgerSink(dataset, shard, ChunkWriter(parts, info["rank"]))
    with _flush_on_sigterm(sink, len(remaining)):
        if engine == "fast":
            from harness.engine.evaluate_fast import build_loader, evaluate_loader_fast
            loader = build_loader(dataset, info, workers, sampler=shard)
            rows, seconds = evaluate_loader_fast(model, loader, info, tmpdir=tmpdir, precision=precision,
                                                 batch_size=batch_size, on_prediction=show,
                                                 sink=sink)
        else:
            loader = stock_loader(dataset, shard, workers)
            rows, seconds = evaluate_loader(model, loader, info, tmpdir=tmpdir, precision=precision,
                                            on_prediction=show, sink=sink)
    if info["rank"] != 0:
        return {}
    names = [dataset.img_infos[i]["filename"] for i, _, _ in rows]
    new = from_rows([r[0] for r in rows], names, [r[1] for r in rows], [r[2] for r in rows]) if rows else None
    ledger = concat([part for part in (earlier, new) if part is not None and part.num_images])
    check_complete(ledger, len(dataset), f"{run_dir}: the evaluation's ledger")
    ledger_file = ledger_resume.finish(run_dir, ledger, session)
    totals = tuple(torch.from_numpy(t.astype(np.float32)) for t in ledger.totals().values())
    metric = dataset.evaluate([totals], metric="mIoU", logger=logger)   # mmseg's tables and rounded values
    eval_json = _write_eval_json(run_dir, job["protocol"], job["config"], metric)
    if job["kind"] == "eval":   # one TextLoggerHook-style line, so every run directory has a log.json to read
        with open(run_dir / "eval.log.json", "a") as fh:
            fh.write(json.dumps({"mode": "val", "epoch": 1, "iter": len(dataset),
                                 **{k: float(v) for k, v in metric.items()}}) + "\n")
    metrics, per_class = metrics_percent(ledger, dataset.CLASSES)
    from harness.ledger.store import rows as ledger_rows
    pictures = _pictures(model, dataset, ledger_rows(ledger), run_dir, precision, show, logger)
    return {"metrics": metrics, "per_class": per_class, "eval_json": eval_json,
            "num_images": len(dataset), "eval_seconds": seconds,
            "images_per_s": len(remaining) / seconds if seconds else None,
            "eval_engine": engine, "precision": precision, "pictures": pictures,
            "peak_memory_mib": peak_memory_mib(info["device"]),
            "ledger": {"file": LEDGER_FILE, **ledger_file}, "sessions": session}


def _start_session(parts: Path, job: dict, dataset, info: dict, window_batch: int | None):
    """(the earlier sessions' ledger or None, this session's number): every rank reads the chunks before any
    rank writes one (a barrier), rank 0 checks the earlier sessions' settings and marks this session."""
    from harness.ledger import resume as ledger_resume
    from harness.ledger.store import LEDGER_FILE, read_ledger, read_parts

    earlier = read_parts(parts)
    if earlier is None and (parts.parent / LEDGER_FILE).is_file():   # merged, then stopped before its record
        earlier = read_ledger(parts.parent / LEDGER_FILE)
    if earlier is not None:
        names = [dataset.img_infos[i]["filename"] if i < len(dataset) else None for i in earlier.index.tolist()]
        if names != earlier.names.tolist():
            raise ledger_resume.ResumeRefused(f"{parts}: its chunks were written for other images than this "
                                              "dataset's", fix="start a new run (without --resume)")
    session = ledger_resume.start_session(parts, job, write=info["rank"] == 0, window_batch=window_batch)
    if info["distributed"]:
        import torch.distributed as dist
        dist.barrier()
    return earlier, session


def stock_loader(dataset, shard: IndexShard, workers: int):
    """mmseg's build_dataloader for testing (one image per batch, mmcv's collate), over the shard's indices."""
    from functools import partial

    import torch
    from mmcv.parallel import collate
    return torch.utils.data.DataLoader(dataset, batch_size=1, sampler=shard, num_workers=workers,
                                       collate_fn=partial(collate, samples_per_gpu=1), pin_memory=True,
                                       shuffle=False, persistent_workers=False)


class _flush_on_sigterm:
    """While the loop runs, SIGTERM notes a stop in the sink (the loop raises EvaluationInterrupted at its next
    image boundary); on the way out, whatever happened, the rows waiting in the sink are written as a chunk with
    SIGTERM held off (a launcher's second SIGTERM, torchrun's, must not cut it short), and held off still while a
    stopped process writes its failure line and exits."""

    def __init__(self, sink: LedgerSink, todo: int):
        self.sink, self.todo = sink, todo
        self.installed, self.previous = False, None

    def _note(self, signum, frame):
        self.sink.request_stop(f"({self.todo} to do in this session)")

    def __enter__(self):
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._note)
            self.installed = True
        return self

    def __exit__(self, exc_type, *exc):
        import signal
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.sink.flush()
        if self.installed and exc_type is None:   # interrupted: SIGTERM stays ignored while the process exits
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)
        return False


def peak_memory_mib(device: str) -> float:
    """This process's peak memory so far: CUDA's allocator peak on a GPU, else the peak resident set size."""
    import torch
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux reports KiB


def _show_dir(job: dict, dataset):
    """--show-dir: the writer each rank hands its predictions to (harness/engine/gallery.py), or None."""
    if not job.get("show_dir"):
        return None
    from harness.engine.gallery import ShowDir
    return ShowDir(Path(job["show_dir"]), dataset, job.get("show_limit"))


def _pictures(model, dataset, results, run_dir: Path, precision: str, show, logger) -> dict:
    """The report's gallery (and --show-dir's count) as artifacts; a gallery that fails costs a warning, not the
    evaluation."""
    from harness.engine.gallery import write_gallery
    artifacts = {}
    if show is not None:
        artifacts.update(show_dir=str(show.directory), show_count=sum(map(show.wanted, range(len(dataset)))))
    try:
        artifacts["gallery"] = write_gallery(model, dataset, results, run_dir, precision)
    except Exception as exc:  # noqa: BLE001
        logger.warning(f"no gallery for the report: {type(exc).__name__}: {exc}")
    return artifacts


def run_eval(job: dict, cfg, info: dict, run_dir: Path, logger) -> dict:
    from mmseg.models import build_segmentor

    from harness.engine.checkpoint import load_seg_checkpoint

    model = build_segmentor(cfg.model, test_cfg=cfg.get("test_cfg"))
    if cfg.get("fp16") is not None:
        from mmcv.runner import wrap_fp16_model
        wrap_fp16_model(model)
    meta = load_seg_checkpoint(model, job["checkpoint"]["path"], map_location="cpu")
    logger.info(f"loaded checkpoint {job['checkpoint']['path']} (sha256 {job['checkpoint']['sha256']})")
    model, reverted = sync_bn_to_bn(model, info)
    model = wrap_model(model, info)
    out = final_evaluation(model, cfg, info, run_dir, job, logger)
    if info["rank"] != 0:
        return {}
    return {"metrics": out["metrics"], "per_class": out["per_class"], "ledger": out["ledger"],
            "sessions": out["sessions"],
            "artifacts": {"eval_json": out["eval_json"], "log_json": "eval.log.json", **out["pictures"]},
            "timing": {"images_per_s": out["images_per_s"], "eval_s": out["eval_seconds"],
                       "peak_memory_mib": out["peak_memory_mib"]},
            "eval_engine": out["eval_engine"], "precision": out["precision"],
            "notes": {"sync_bn_to_bn": reverted, "checkpoint_has_meta": bool(meta)}}
