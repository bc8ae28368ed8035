"""SIGTERM while a ledger chunk is being written (the CI failure of issue 25: "ledger chunks hold the same image
twice"): the signal may land between the chunk's rename and the writer's bookkeeping; the engine stops at the next
image boundary instead, so every image is in exactly one chunk and none is lost."""
from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from harness.engine.evaluate import _flush_on_sigterm
from harness.engine.rows import EvaluationInterrupted, IndexShard, LedgerSink
from harness.ledger.store import ChunkWriter, read_parts

N = 6


class _Images:
    img_infos = [{"filename": f"img_{i}.jpg"} for i in range(N)]


@contextmanager
def _signal_inside_bookkeeping(at_chunk: int):
    """SIGTERM to this process at the worst moment of the `at_chunk`-th chunk: it is on disk and the writer's
    sequence number has moved on, but its rows still wait in `pending` (a line tracer watches ChunkWriter.flush)."""
    sent = []

    def in_flush(frame, event, arg):
        writer = frame.f_locals.get("self")
        if event == "line" and not sent and writer.seq == at_chunk and writer.pending:
            sent.append(writer.seq)
            os.kill(os.getpid(), signal.SIGTERM)
        return in_flush

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code is ChunkWriter.flush.__code__:
            return in_flush
        return None

    sys.settrace(tracer)
    try:
        yield sent
    finally:
        sys.settrace(None)


@pytest.mark.parametrize("at_chunk", [1, 2])
def test_sigterm_inside_a_chunk_write_leaves_each_image_in_one_chunk(tmp_path, at_chunk):
    sink = LedgerSink(_Images(), IndexShard(list(range(N))), ChunkWriter(tmp_path, rank=0, every_images=2,
                                                                        every_s=3600))
    areas = np.ones((4, 3), dtype=np.int64)
    added = []
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(EvaluationInterrupted), _signal_inside_bookkeeping(at_chunk) as sent, \
                _flush_on_sigterm(sink, N):
            for index in range(N):          # one image per batch, as the stock loop adds them
                sink.add(index, 12, areas)
                added.append(index)
                sink.check_stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent == [at_chunk]
    ledger = read_parts(tmp_path)
    assert ledger.index.tolist() == added                  # every finished image once, none lost
    assert len(added) == 2 * at_chunk                      # stopped at the first image boundary after the signal
