"""The shell every stage entry shares: resolved paths, a JSON summary, the timer, a
progress display and the ``python -m pipeline.stages.<name>`` entry point.

A stage module is then only its own work::

    def run(params: Params, root=".", *, show_progress=False) -> dict:
        with stage("outcomes", params, root, show_progress=show_progress) as s:
            ...  # read from s.paths, add to s.summary, call s.step("label")
        return s.summary

    def main() -> None:
        stage_main(run, lambda summary: f"... → {summary['outputs']['...']}")
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from threadpoolctl import threadpool_limits

from pipeline import __version__, catalog
from pipeline.config import Params, PathsParams, instrument_registry, load_params
from pipeline.engine.cpus import stage_threads
from pipeline.instruments import use_registry
from pipeline.io import write_json


def resolve(paths: PathsParams, root: str | Path = ".") -> dict[str, Path]:
    """Absolute artefact paths: relative entries are taken from ``root``."""
    root = Path(root)
    return {
        name: (root / value) if not Path(value).is_absolute() else Path(value)
        for name, value in paths.model_dump().items()
    }


@contextmanager
def stage_timer(summary: dict, threads: int | None = None) -> Iterator[dict]:
    """Record wall time and environment into ``summary`` (the stage's JSON summary).

    OpenMP pools (gradient boosting) get the CPUs the process may use, or ``threads`` from
    params (``pipeline/engine/cpus.py``). BLAS runs single-threaded inside a stage: the
    models solve many small systems, where threads only add synchronisation, and threaded
    BLAS in two processes at once (two pipelines, or a pipeline beside the tests) can slow
    both by an order of magnitude.
    """
    start = time.perf_counter()
    summary.setdefault("warnings", [])
    summary["threads"] = stage_threads(threads)
    with (
        threadpool_limits(limits=1, user_api="blas"),
        threadpool_limits(limits=summary["threads"], user_api="openmp"),
    ):
        yield summary
    summary["seconds"] = round(time.perf_counter() - start, 3)
    summary["package_version"] = __version__
    summary["python"] = platform.python_version()


@dataclass
class StageRun:
    """What a stage's body works with: its resolved ``paths``, the ``summary`` it adds to
    (written to ``logs/<stage>.json`` when the body ends) and ``step`` to advance its
    progress display (each step's seconds go to the summary's ``step_seconds``)."""

    name: str
    paths: dict[str, Path]
    summary: dict[str, Any]
    step: Callable[[str], None] = field(default=lambda _: None)


@contextmanager
def stage_progress(name: str, steps: int | None, show: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar on standard error (``steps`` known) or a spinner with the elapsed
    time (unknown), shown only when asked and when standard error is a terminal; yields
    the function that marks one step done."""
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not (show and console.is_terminal)
    ) as bar:
        task = bar.add_task(name, total=steps)

        def step(label: str) -> None:
            bar.update(task, advance=1, description=f"{name}: {label} done")

        yield step


@contextmanager
def stage(
    name: str,
    params: Params,
    root: str | Path = ".",
    *,
    steps: int | None = None,
    show_progress: bool = False,
    **summary: Any,
) -> Iterator[StageRun]:
    """Run a stage's body: paths resolved from ``root``, the summary started with the
    stage's name (and ``summary``), timed (``stage_timer``), with a progress display of
    ``steps`` steps and the instruments ``params`` register active (built-ins plus
    ``instruments:``; restored afterwards); the summary is written to the stage's log when
    the body succeeds."""
    paths = resolve(params.paths, root)
    run = StageRun(name, paths, {"stage": name, **summary})
    with (
        use_registry(instrument_registry(params)),
        stage_timer(run.summary, params.threads),
        stage_progress(name, steps, show_progress) as step,
    ):
        run.step = _timed(step, run.summary.setdefault("step_seconds", {}))
        yield run
        if not run.summary["step_seconds"]:
            del run.summary["step_seconds"]
    write_json(run.summary, catalog.stage_log(name).path(paths))


def _timed(step: Callable[[str], None], record: dict[str, float]) -> Callable[[str], None]:
    """``step`` that also records, under each label, the seconds since the previous step
    (or the start): where a stage's time goes, in its log."""
    last = time.perf_counter()

    def timed(label: str) -> None:
        nonlocal last
        now = time.perf_counter()
        record[label] = round(record.get(label, 0.0) + now - last, 3)
        last = now
        step(label)

    return timed


def stage_main(run: Callable[..., dict], describe: Callable[[dict], str]) -> None:
    """``python -m pipeline.stages.<name>`` (what ``dvc repro`` runs): the stage on
    ``params.yaml`` of the working folder, with progress, then one line saying what it
    wrote."""
    print(describe(run(load_params(), show_progress=True)))
