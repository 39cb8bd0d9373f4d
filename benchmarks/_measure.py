"""Helpers for benchmark scripts: run a callable in a fresh process, record time and peak RSS;
replicate a table with suffixed ids to reach national scale."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path


def _child(fn: Callable[[], dict], queue) -> None:
    start = time.perf_counter()
    try:
        extra = fn() or {}
    except Exception as exc:  # report the failure instead of leaving the parent waiting
        queue.put({"seconds": None, "error": f"{type(exc).__name__}: {exc}"})
        return
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # the largest of the worker processes a stage forked (models): they share the stage's
    # pages until they write to them, so the machine's peak is below the sum of the two
    worker_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    workers = {"peak_rss_worker_mb": round(worker_kib / 1024, 1)} if worker_kib else {}
    queue.put(
        {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_kib / 1024, 1), **workers, **extra}
    )


def measure(fn: Callable[[], dict], timeout: float | None = None) -> dict:
    """Run ``fn`` in a fresh process (so peak memory is its own) and return the figures;
    after ``timeout`` seconds the child is stopped and the result says so."""
    import queue as queue_module

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout)
    except queue_module.Empty:
        proc.terminate()
        result = {"seconds": None, "timed_out_after_s": timeout}
    proc.join()
    return result


def machine() -> dict:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def save(name: str, rows: list[dict]) -> Path:
    out = Path(__file__).parent / "results" / f"{name}.json"
    out.write_text(json.dumps({"machine": machine(), "results": rows}, indent=2) + "\n")
    return out


def replicate(df, table: str, copies: int):
    """``copies`` copies of a contract table, each with its ids suffixed ``r<k>`` so that the
    copies are distinct episodes (foreign keys stay consistent across tables)."""
    import pandas as pd

    from pipeline.contract import column_specs

    ids = [c.name for c in column_specs(table) if c.kind == "id" and c.name in df]
    parts = []
    for k in range(copies):
        part = df.copy()
        for col in ids:
            part[col] = part[col] + f"r{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
