"""Shared plumbing for stage entries: resolving paths and timing a stage."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits

from pipeline import __version__
from pipeline.config import PathsParams


def resolve(paths: PathsParams, root: str | Path = ".") -> dict[str, Path]:
    """Absolute artefact paths: relative entries are taken from ``root``."""
    root = Path(root)
    return {
        name: (root / value) if not Path(value).is_absolute() else Path(value)
        for name, value in paths.model_dump().items()
    }



@contextmanager
def stage_timer(summary: dict) -> Iterator[dict]:
    """Record wall time and environment into ``summary`` (the stage's JSON summary).

    BLAS runs single-threaded inside a stage: the models solve many small systems, where
    threads only add synchronisation, and threaded BLAS in two processes at once (two
    pipelines, or a pipeline beside the tests) can slow both by an order of magnitude.
    """
    start = time.perf_counter()
    summary.setdefault("warnings", [])
    with threadpool_limits(limits=1, user_api="blas"):
        yield summary
    summary["seconds"] = round(time.perf_counter() - start, 3)
    summary["package_version"] = __version__
    summary["python"] = platform.python_version()
