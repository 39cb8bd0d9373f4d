"""Thread pools are sized from the CPUs the process may use, never the machine's count."""

import os

from threadpoolctl import threadpool_info

from pipeline.engine.cpus import allowed_cpus, cgroup_cpu_limit, stage_threads


def test_cgroup_quota_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: 2 threads
    assert cgroup_cpu_limit(v2) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_cpu_limit(v1) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def test_the_smallest_of_affinity_quota_and_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert allowed_cpus(tmp_path) == 4  # no quota: the affinity
    (tmp_path / "cpu.max").write_text("200000 100000")
    assert allowed_cpus(tmp_path) == 2  # the quota is smaller
    assert stage_threads(None, tmp_path) == 2
    assert stage_threads(1, tmp_path) == 1
    assert stage_threads(16, tmp_path) == 2  # asking for more only oversubscribes


def test_a_stage_limits_openmp_to_the_threads_it_may_use():
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime gradient boosting uses)

    from pipeline.config import Params
    from pipeline.stages.common import stage_timer

    params = Params(threads=1)
    with stage_timer({}, params.threads) as summary:
        openmp = [p for p in threadpool_info() if p["user_api"] == "openmp"]
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert summary["threads"] == 1
    assert openmp, "no OpenMP runtime loaded: the check would prove nothing"
    assert all(p["num_threads"] == 1 for p in openmp + blas)


def test_small_fits_run_openmp_on_one_thread():
    from pipeline.engine.cpus import OPENMP_MIN_ROWS, openmp_threads

    assert openmp_threads(1_700, 2) == 1
    assert openmp_threads(OPENMP_MIN_ROWS - 1, 8) == 1
    assert openmp_threads(OPENMP_MIN_ROWS, 8) == 8
    assert openmp_threads(10**6, 1) == 1
