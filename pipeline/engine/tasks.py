"""Independent pieces of a stage's work on the CPUs the stage may use: one process per CPU
(``pipeline/engine/cpus.py``), each forked from the stage with its data already in memory,
so nothing is copied or pickled on the way in — only the results come back.

A stage's analyses are mostly single-threaded Python and small linear algebra (BLAS runs
on one thread inside a stage, ``pipeline/stages/common.py``): at national scale the models
stage spent minutes on one core while the other stayed idle. Processes rather than
threads, because the model cards capture each fit's warnings, and Python's warning filters
are one global state that threads would share.

Results do not depend on the number of workers: every task runs the same code on the same
data in whichever process, and the caller puts the results back in its own order.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")

_PENDING: dict[str, Callable[[], object]] = {}
"""The tasks of the running ``run_tasks`` call, set before the workers are forked (a
closure cannot be pickled; a forked worker finds it here by its label)."""


class WorkerLost(RuntimeError):
    """A worker process died (killed, usually for memory) before finishing its task."""


def can_fork() -> bool:
    """Whether worker processes are forked here: on Linux only. Windows has no fork, and on
    macOS a forked child of a process that has used the system's frameworks (Accelerate's
    BLAS among them) can crash, which is why Python itself stopped forking there by
    default; there the tasks run one after the other, with the same results."""
    return sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


def worker_count(workers: int, tasks: int) -> int:
    """How many worker processes ``run_tasks`` starts for ``tasks`` tasks given ``workers``
    (1: they run in the calling process)."""
    return min(workers, tasks) if workers > 1 and tasks > 1 and can_fork() else 1


def _call(label: str) -> tuple[object, float]:
    start = time.perf_counter()
    result = _PENDING[label]()
    return result, time.perf_counter() - start


def run_tasks(
    tasks: Mapping[str, Callable[[], T]],
    workers: int,
    done: Callable[[str], None] = lambda _: None,
    seconds: dict[str, float] | None = None,
) -> dict[str, T]:
    """Each task's result by label. ``tasks`` in the order to start them (longest first
    keeps the workers evenly busy); ``done`` is told each label as its task finishes, and
    ``seconds`` (if given) gets each task's own time. With one worker, one task or no
    ``fork`` they run here, one after the other. A task's exception is raised here, as
    raised in the worker (the tasks not yet started are cancelled)."""
    labels = list(tasks)
    seconds = {} if seconds is None else seconds
    results: dict[str, T] = {}
    processes = worker_count(workers, len(labels))
    if processes == 1:
        for label in labels:
            start = time.perf_counter()
            results[label] = tasks[label]()
            seconds[label] = round(time.perf_counter() - start, 3)
            done(label)
        return results
    global _PENDING
    _PENDING = dict(tasks)
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("fork")) as pool:
            futures: dict[Future, str] = {pool.submit(_call, label): label for label in labels}
            pending = set(futures)
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in sorted(finished, key=lambda f: labels.index(futures[f])):
                        result, took = future.result()
                        label = futures[future]
                        results[label] = result
                        seconds[label] = round(took, 3)
                        done(label)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    except BrokenProcessPool as exc:
        raise WorkerLost(
            f"a worker process died before finishing ({exc}); this is usually the system "
            "stopping it for lack of memory: rerun with fewer workers (params `threads: 1` "
            "fits everything in one process)"
        ) from None
    finally:
        _PENDING = {}
    return {label: results[label] for label in labels}
