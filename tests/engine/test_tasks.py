"""Independent tasks on forked worker processes: the same results as one after the other,
failures reported as raised, a lost worker said plainly."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from pipeline.engine.tasks import WorkerLost, can_fork, run_tasks

needs_fork = pytest.mark.skipif(not can_fork(), reason="worker processes are forked")

DATA = pd.DataFrame({"g": np.arange(1000) % 7, "x": np.random.default_rng(3).normal(size=1000)})


def _tasks() -> dict:
    # closures over data in memory: what a forked worker inherits without pickling
    return {
        "sums": lambda: DATA.groupby("g")["x"].sum(),
        "pid": lambda: os.getpid(),
        "solve": lambda: np.linalg.solve(np.eye(3) * 2, np.ones(3)),
        "table": lambda: DATA.describe(),
    }


@needs_fork
def test_parallel_results_equal_the_serial_ones_in_the_order_given():
    serial = run_tasks(_tasks(), workers=1)
    parallel = run_tasks(_tasks(), workers=2)
    assert list(parallel) == list(serial) == ["sums", "pid", "solve", "table"]
    pd.testing.assert_series_equal(parallel["sums"], serial["sums"])
    np.testing.assert_array_equal(parallel["solve"], serial["solve"])
    pd.testing.assert_frame_equal(parallel["table"], serial["table"])
    assert serial["pid"] == os.getpid()
    assert parallel["pid"] != os.getpid()  # it did run in a worker


@needs_fork
@pytest.mark.parametrize("workers", [1, 2])
def test_every_task_is_reported_done_with_its_own_time(workers):
    done: list[str] = []
    seconds: dict[str, float] = {}
    run_tasks(_tasks(), workers, done.append, seconds)
    assert sorted(done) == sorted(_tasks())
    assert set(seconds) == set(_tasks())
    assert all(s >= 0 for s in seconds.values())


def _fails() -> None:
    raise ValueError("column 'x' is not numeric")


@needs_fork
@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_error_is_raised_as_raised_in_the_worker(workers):
    with pytest.raises(ValueError, match="column 'x' is not numeric"):
        run_tasks({"ok": lambda: 1, "bad": _fails}, workers)


@needs_fork
def test_a_worker_killed_mid_task_is_said_plainly():
    with pytest.raises(WorkerLost, match=r"lack of memory.*threads: 1"):
        run_tasks({"ok": lambda: 1, "killed": lambda: os._exit(9)}, workers=2)


@needs_fork
def test_the_tasks_are_forgotten_after_a_run():
    from pipeline.engine import tasks as module

    run_tasks(_tasks(), workers=2)
    assert module._PENDING == {}
    with pytest.raises(ValueError):
        run_tasks({"ok": lambda: 1, "bad": _fails}, workers=2)
    assert module._PENDING == {}


def test_one_worker_or_one_task_runs_here():
    assert run_tasks({"pid": lambda: os.getpid()}, workers=2)["pid"] == os.getpid()
    assert run_tasks({"pid": lambda: os.getpid(), "n": lambda: 1}, workers=1)["pid"] == (
        os.getpid()
    )


def test_off_linux_the_tasks_run_here_one_after_the_other(monkeypatch):
    # macOS may crash a forked child that inherited its frameworks; Windows cannot fork
    monkeypatch.setattr("sys.platform", "darwin")
    assert not can_fork()
    done = run_tasks({"pid": lambda: os.getpid(), "n": lambda: 1}, workers=2)
    assert done == {"pid": os.getpid(), "n": 1}
