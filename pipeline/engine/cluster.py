"""The Dask client the engine runs on: a local cluster, or a running scheduler.

Problems a user can fix (an address nobody answers at, a scheduler without workers, workers
from another environment, a worker killed for memory) become ``ClusterError`` with what to
do, never a Dask traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipeline import __version__
from pipeline.config import DaskParams
from pipeline.engine.cpus import stage_threads

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client


class ClusterError(ConnectionError):
    """The Dask cluster cannot be reached or cannot run the pipeline's tasks."""


def _package_version() -> str:
    """Runs on each worker: the version of the pipeline package it imports."""
    import pipeline

    return pipeline.__version__


def check_workers(client: Client, where: str, timeout_s: float) -> int:
    """Wait for a first worker; check every worker imports this version of the package.
    Returns the number of workers."""
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError:
        raise ClusterError(
            f"The Dask scheduler at {where} has no workers (waited {timeout_s:g} s). Start "
            "workers (for example `dask worker ADDRESS`, or scale the dask-jobqueue or "
            "Kubernetes cluster), or raise dask.connect_timeout_s if they are still starting."
        ) from None
    try:
        versions = client.run(_package_version)
    except Exception as exc:  # a worker that cannot import the package fails here
        raise ClusterError(
            f"The workers of the Dask cluster at {where} cannot run the pipeline ({exc}). "
            "Start them from this project's environment (the same package version), e.g. "
            "with the same virtualenv or container image."
        ) from None
    other = sorted({f"{w}: {v}" for w, v in versions.items() if v != __version__})
    if other:
        raise ClusterError(
            f"Workers of the Dask cluster at {where} run another version of the pipeline "
            f"package than this one ({__version__}): {', '.join(other)}. Start them from "
            "this project's environment."
        )
    return len(versions)


@contextmanager
def dask_client(params: DaskParams, threads: int | None = None) -> Iterator[Client]:
    """A connected ``distributed.Client``, closed (with any local cluster) on exit.

    ``scheduler_address`` None starts a ``LocalCluster`` on this machine (listening on
    127.0.0.1 only); otherwise connects to the scheduler there, giving up after
    ``connect_timeout_s`` with a message saying what to check. A local cluster without
    ``n_workers`` gets one worker per CPU this process may use (``threads``, capped).
    """
    from distributed import Client, LocalCluster

    address = params.scheduler_address
    if address is None:
        cluster = LocalCluster(
            n_workers=params.n_workers or stage_threads(threads),
            threads_per_worker=params.threads_per_worker,
            processes=params.processes,
            memory_limit=params.memory_limit,
            dashboard_address="127.0.0.1:0",  # any free port, this machine only
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(address, timeout=f"{params.connect_timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"Cannot reach a Dask scheduler at {address} ({exc}). Check that the scheduler "
            "is running and that this machine can reach that host and port (firewall, VPN, "
            "the address printed by `dask scheduler` or your cluster's `scheduler_address`); "
            "or set dask.scheduler_address: null to start a local cluster."
        ) from None
    try:
        check_workers(client, address, params.connect_timeout_s)
        yield client
    finally:
        client.close()


def describe(client: Client, params: DaskParams) -> dict:
    """Where the engine ran, for the stage's log summary."""
    nthreads = client.nthreads()
    return {
        "scheduler": params.scheduler_address or "local cluster",
        "workers": len(nthreads),
        "threads": int(sum(nthreads.values())),
    }


def gather(client: Client, futures: list) -> list:
    """Results in order; a task's error is raised as itself (a worker killed, typically for
    memory, becomes a ClusterError saying what to change)."""
    from distributed import KilledWorker, wait

    wait(futures)
    for future in futures:
        if future.status == "error":
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                raise ClusterError(
                    "A Dask worker died while running a bucket (most often it ran out of "
                    "memory). Use smaller buckets (lower dask.episodes_per_partition or raise "
                    "dask.partitions) or give workers more memory (dask.memory_limit)."
                ) from None
            raise exc
    return client.gather(futures)
