"""Where prepare's file work is spread over worker processes: one rule for starting and stopping a pool.

Checking 22,000 images or extracting as many zip members is minutes of one CPU; both hand chunks of work to a fork
pool (or do them here when one process or one chunk is all there is).
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def chunk_results(func: Callable, tasks: list, processes: int, initializer: Callable | None = None,
                  initargs: tuple = ()) -> Iterator:
    """`func` over `tasks`, results in any order: here (one process, or one task; `initializer` runs here first) or
    over a pool. The pool is closed when every result was read and terminated when the reader stopped early (idle
    workers exit on close(); terminate() can wait seconds on their locks)."""
    if processes == 1 or len(tasks) <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield map(func, tasks)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    pool = context.Pool(min(processes, len(tasks)), initializer=initializer, initargs=initargs)
    finished = False
    try:
        yield pool.imap_unordered(func, tasks)
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()
