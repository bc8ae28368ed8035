"""An evaluation's per-image rows on their way to the ledger: which indices a rank still evaluates (IndexShard),
where each finished image's row goes (LedgerSink: the chunk writer, harness/ledger/store.py), and the gathering of
every rank's rows. Shared by the stock loop (harness/engine/evaluate.py) and the fast one (evaluate_fast.py)."""
from __future__ import annotations

from harness.engine.distributed import gather_results


class IndexShard:
    """The indices still to evaluate, sharded as mmseg's DistributedSampler(shuffle=False) shards a whole dataset:
    padded to a multiple of the world size by repeating the first ones, rank r takes every world-th from r. On
    a fresh run (all indices) it is exactly that sampler's order. `own`: this rank's indices that are not padding
    (the ones its ledger chunks hold; a padded index belongs to another rank)."""

    def __init__(self, indices: list[int], world_size: int = 1, rank: int = 0):
        n = len(indices)
        total = -(-n // world_size) * world_size if n else 0
        padded = (list(indices) * (-(-total // n) if n else 0))[:total]
        self.indices = padded[rank:total:world_size]
        self.own = {padded[k] for k in range(rank, n, world_size)}

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class EvaluationInterrupted(Exception):
    """SIGTERM during the evaluation loop (a Slurm time limit's signal, a preemption, a kill): the images finished
    so far are flushed to the ledger chunks, then the engine exits non-zero; `--resume` continues from them."""

    def one_line(self) -> str:
        return f"evaluation interrupted by SIGTERM: {self}"


class LedgerSink:
    """Where each finished image's row goes: this rank's chunk writer (own images only) and the rows gathered at
    the end. A row is (dataset index, pixel count, (4, C) int64 areas in AREAS order).

    A stop (SIGTERM) is only noted when it comes (`request_stop`): the loops call `check_stop` between images,
    so a signal never lands between a chunk's rename and the writer's bookkeeping (which wrote the same images
    into two chunks); `due` is true once a stop is noted, so rows waiting in a loop reach the sink first."""

    def __init__(self, dataset, shard: IndexShard, writer=None):
        self.dataset, self.shard, self.writer = dataset, shard, writer
        self.rows: list[tuple] = []
        self.stop: str | None = None

    def request_stop(self, why: str) -> None:
        self.stop = why

    def check_stop(self) -> None:
        if self.stop is not None:
            raise EvaluationInterrupted(f"{len(self.rows)} of this process's images were done {self.stop}; the "
                                        "ledger chunks hold them: continue with `repro eval ... --resume`")

    def add(self, index: int, pixels: int, areas) -> None:
        import numpy as np
        areas = np.asarray(areas, dtype=np.int64)
        self.rows.append((int(index), int(pixels), areas))
        if self.writer is not None and index in self.shard.own:
            self.writer.add(index, self.dataset.img_infos[index]["filename"], pixels, areas)

    def due(self, waiting: int = 0) -> bool:
        return self.stop is not None or (self.writer is not None and self.writer.due(waiting))

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()


def gather_rows(rows: list, info: dict, tmpdir: str | None) -> list:
    """Every rank's rows on rank 0 ([] elsewhere), one per image (a padded index keeps its first), by index."""
    gathered = gather_results(rows, len(rows) * info["world_size"], info, tmpdir)
    unique: dict[int, tuple] = {}
    for row in gathered or []:
        unique.setdefault(row[0], row)
    return [unique[i] for i in sorted(unique)]
