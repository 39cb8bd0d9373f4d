"""How many CPUs this process may actually use: the smaller of its CPU affinity (what
``taskset``, a batch scheduler or a container's cpuset allows) and the cgroup CPU quota
(``docker --cpus``, Kubernetes limits, systemd ``CPUQuota``), never more than the machine
has. Thread pools sized from ``os.cpu_count()`` instead oversubscribe a shared machine: on a
2-core runner already busy, an OpenMP pool of all cores per process is what turned a
minute's prediction stage into half an hour.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """CPUs the cgroup quota allows (rounded up), or None without a quota: cgroup v2
    ``cpu.max`` ("quota period" or "max period"), else v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` (quota −1: none)."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
        quota_file, period_file = (
            root / "cpu" / "cpu.cfs_quota_us",
            root / "cpu" / "cpu.cfs_period_us",
        )
        if quota_file.is_file() and period_file.is_file():
            quota_us, period_us = int(quota_file.read_text()), int(period_file.read_text())
            return None if quota_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError):
        return None
    return None


def allowed_cpus(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may use: affinity, cgroup quota and machine, the smallest."""
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_limit(root)
    if quota is not None:
        counts.append(quota)
    return max(1, min(counts))


def stage_threads(configured: int | None, root: Path = CGROUP_ROOT) -> int:
    """Threads a stage's pools may use: ``threads`` from params if set (capped at what is
    allowed: asking for more than the process may use only oversubscribes), else all
    allowed CPUs."""
    allowed = allowed_cpus(root)
    return allowed if configured is None else max(1, min(configured, allowed))


OPENMP_MIN_ROWS = 20_000
"""Below this many rows a gradient-boosting fit runs its OpenMP loops on one thread."""


def openmp_threads(rows: int, threads: int) -> int:
    """OpenMP threads for fits on about ``rows`` rows, given the stage's ``threads``: one
    below ``OPENMP_MIN_ROWS``. Gradient boosting opens a parallel region for every node
    of every tree, and on a few thousand rows each region's work is smaller than waking
    the other threads: on the default cohort (1,700 rows) the prediction stage took 14 s
    on one thread against 16 s on two spinning threads and 67 s on two sleeping ones
    (``OMP_WAIT_POLICY=PASSIVE``, which a shared machine needs: docs/scaling.md)."""
    return 1 if rows < OPENMP_MIN_ROWS else threads
