"""Reaching the cluster: foreseeable mistakes are short, actionable messages."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import DaskParams, ParamsError, parse_params
from pipeline.engine import cluster as engine_cluster
from pipeline.engine.cluster import ClusterError, dask_client
from pipeline.stages import ingest

runner = CliRunner()
NOBODY = "tcp://127.0.0.1:9"  # the discard port: nothing listens there


def test_an_unreachable_scheduler_is_a_clear_error(small_export, engine_params, tmp_path):
    folder, _ = small_export
    params = engine_params("dask", NOBODY).model_copy(
        update={"dask": DaskParams(scheduler_address=NOBODY, connect_timeout_s=1)}
    )
    start = time.perf_counter()
    with pytest.raises(
        ClusterError, match=r"Cannot reach a Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        ingest.run(params, tmp_path / "out", folder)
    assert time.perf_counter() - start < 15
    assert not (tmp_path / "out" / "data" / "interim").exists()


def test_the_command_line_reports_it_without_a_traceback(small_export, tmp_path):
    folder, _ = small_export
    yaml = tmp_path / "params.yaml"
    yaml.write_text(f"engine: dask\ndask:\n  scheduler_address: {NOBODY}\n  connect_timeout_s: 1\n")
    result = runner.invoke(
        app, ["ingest", str(folder), "--out", str(tmp_path / "o"), "--params", str(yaml)]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert "Cannot reach a Dask scheduler" in text and "dask.scheduler_address" in text
    assert "Traceback" not in result.output


def test_a_malformed_address_is_refused_when_params_load():
    with pytest.raises(ParamsError, match=r"dask\.scheduler_address"):
        parse_params({"dask": {"scheduler_address": "tcp:// 10.0.0.5:8786"}})
    with pytest.raises(ParamsError, match=r"dask\.memory_limit"):
        parse_params({"dask": {"memory_limit": "plenty"}})
    with pytest.raises(ParamsError, match="engine"):
        parse_params({"engine": "spark"})


def test_a_local_cluster_is_started_and_closed():
    with dask_client(DaskParams(n_workers=1, processes=False)) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        cluster = client.cluster
    assert client.status == "closed" and cluster.status.name == "closed"


def test_a_scheduler_without_workers_is_a_clear_error():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address="127.0.0.1:0") as empty:
        params = DaskParams(scheduler_address=empty.scheduler_address, connect_timeout_s=1)
        with pytest.raises(ClusterError, match="has no workers"), dask_client(params):
            pytest.fail("connected to a scheduler that has no workers")


def test_workers_of_another_version_are_refused(monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(engine_cluster, "__version__", "0.0.0-elsewhere")
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as other:
        params = DaskParams(scheduler_address=other.scheduler_address, connect_timeout_s=5)
        with pytest.raises(ClusterError, match="another version"), dask_client(params):
            pytest.fail("connected to workers of another version")
