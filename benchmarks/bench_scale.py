"""The whole pipeline at national-service volumes, stage by stage, with DuckDB as the
reference for the attendance block.

    python benchmarks/bench_scale.py                       # 10k, 100k and 1M episodes
    python benchmarks/bench_scale.py 10000 1750000         # chosen sizes (episodes)
    python benchmarks/bench_scale.py --engine dask 100000  # ingest and features on Dask
    python benchmarks/bench_scale.py --stages ingest,features --name scale_10m 1760000
    python benchmarks/bench_scale.py --keep /tmp/cohort 1760000   # keep the outputs

For each size a synthetic cohort is generated and written as Parquet (the `synthesize`
stage; timed, but not part of the pipeline a service runs), then every stage runs in a
fresh process on it, exactly as `dvc repro` would (same stage entries, same params apart
from the cohort size, the engine and no oracle replicates), recording wall time and peak
resident memory. The attendance block is then computed by pandas (the package's
definition) and by DuckDB (the same definition in SQL, from bench_features.py) on the
ingested sessions Parquet file, and the two are checked against each other.

Writes benchmarks/results/scale.json and scale.md (with the machine description and the
targets of issue 9). Not part of the test suite; `make bench-scale` runs the defaults.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure, save
from bench_features import check_agreement, duckdb_attendance, pandas_attendance

from pipeline import catalog
from pipeline.config import parse_params

STAGES = catalog.ANALYSIS_STAGES  # ingest → report, in order
TARGETS = {
    "attendance_time_ratio_max": 2.5,
    "attendance_memory_ratio_max": 3.0,
    "ingest_plus_features_seconds_max": 180,
    "pipeline_seconds_max": 600,
}


def params_for(n_episodes: int, engine: str):
    return parse_params(
        {
            "synthetic": {
                "n_episodes": n_episodes,
                "oracle_replicates": 0,
                "file_format": "parquet",
            },
            "ingest": {"extract_date": "2025-03-31"},
            **({"engine": engine} if engine != "pandas" else {}),
        }
    )


def run_stage(name: str, n_episodes: int, engine: str, root: Path):
    def run() -> dict:
        import importlib

        stage = importlib.import_module(f"pipeline.stages.{name}")
        summary = stage.run(params_for(n_episodes, engine), root)
        out = {}
        if name == "synthesize":
            out["rows"] = summary["rows_written"]
        if name == "ingest":
            out["rows_read"] = summary["totals"]["rows_read"]
        return out

    return run


def one_size(
    n_episodes: int,
    engine: str,
    timeout: float,
    stages: tuple[str, ...] = STAGES,
    keep: Path | None = None,
) -> dict:
    with tempfile.TemporaryDirectory(dir="/tmp", prefix=f"scale-{n_episodes}-") as tmp:
        root = Path(tmp) if keep is None else keep / str(n_episodes)
        root.mkdir(parents=True, exist_ok=True)
        result: dict = {"episodes": n_episodes, "engine": engine, "stages": {}}
        synth = measure(run_stage("synthesize", n_episodes, engine, root), timeout)
        result["synthesize"] = synth
        rows = synth.get("rows", {})
        result["sessions"] = rows.get("sessions")
        if rows:
            result["sessions_per_episode"] = round(rows["sessions"] / n_episodes, 2)
        print(f"[{n_episodes:,}] synthesize {synth}", flush=True)
        for name in stages:
            m = measure(run_stage(name, n_episodes, engine, root), timeout)
            result["stages"][name] = m
            print(f"[{n_episodes:,}] {name}: {m}", flush=True)
            if m.get("seconds") is None:
                break  # later stages need this one's outputs
        interim = root / "data" / "interim"
        if (interim / "sessions.parquet").exists():
            pandas_m = measure(pandas_attendance(interim), timeout)
            duck_m = measure(duckdb_attendance(interim), timeout)
            result["attendance"] = {
                "pandas": pandas_m,
                "duckdb": duck_m,
                "time_ratio": round(pandas_m["seconds"] / duck_m["seconds"], 2),
                "memory_ratio": round(pandas_m["peak_rss_mb"] / duck_m["peak_rss_mb"], 2),
                "agreement": check_agreement(interim),
            }
            print(f"[{n_episodes:,}] attendance {result['attendance']}", flush=True)
        seconds = {k: v.get("seconds") for k, v in result["stages"].items()}
        if all(seconds.get(s) is not None for s in ("ingest", "features")):
            result["ingest_plus_features_seconds"] = round(
                seconds["ingest"] + seconds["features"], 1
            )
        if all(seconds.get(s) is not None for s in STAGES):
            result["pipeline_seconds"] = round(sum(seconds.values()), 1)
        if seconds and all(v is not None for v in seconds.values()):
            result["peak_rss_mb"] = max(
                max(v["peak_rss_mb"], v.get("peak_rss_worker_mb", 0))
                for v in result["stages"].values()
            )
        return result


def markdown(results: list[dict]) -> str:
    m = machine()
    lines = [
        "# Pipeline at scale (benchmarks/bench_scale.py)",
        "",
        f"Machine: {m['cpus']} CPUs, {m['memory_gb']} GB memory, Python {m['python']}, "
        f"{m['platform']}.",
        "",
        "Seconds (peak resident memory in MB) per stage, each in a fresh process; where a "
        "stage starts child processes (the forked workers of ingest, features, models and "
        "missing_data; a git call), the largest child's peak follows the stage's (a forked "
        "worker shares the stage's memory until it writes to it, so its peak counts pages "
        "the stage holds too). The peak below is the largest of all.",
        "",
    ]
    header = ["episodes", "sessions", "engine", "synthesize", *STAGES, "pipeline total"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [f"{r['episodes']:,}", f"{r.get('sessions') or 0:,}", r["engine"]]
        for m in [r["synthesize"], *(r["stages"].get(s, {}) for s in STAGES)]:
            s = m.get("seconds")
            w = f"; worker {m['peak_rss_worker_mb']:,.0f}" if m.get("peak_rss_worker_mb") else ""
            cells.append("—" if s is None else f"{s:g} ({m['peak_rss_mb']:,.0f}{w})")
        cells.append(str(r.get("pipeline_seconds", "—")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Attendance block on the same sessions Parquet file: pandas vs DuckDB.", ""]
    lines += [
        "| episodes | pandas s | DuckDB s | time ratio (target ≤ 2.5) | pandas MB | DuckDB MB "
        "| memory ratio (target ≤ 3) | identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a = r.get("attendance")
        if not a:
            continue
        lines.append(
            f"| {r['episodes']:,} | {a['pandas']['seconds']} | {a['duckdb']['seconds']} | "
            f"{a['time_ratio']} | {a['pandas']['peak_rss_mb']:,.0f} | "
            f"{a['duckdb']['peak_rss_mb']:,.0f} | {a['memory_ratio']} | "
            f"{all(a['agreement'].values())} |"
        )
    lines += ["", "Targets (issue 9): " + ", ".join(f"{k} = {v}" for k, v in TARGETS.items())]
    for r in results:
        if "ingest_plus_features_seconds" in r:
            lines.append(
                f"- {r['episodes']:,} episodes, {r.get('sessions') or 0:,} sessions "
                f"({r['engine']}): ingest + features {r['ingest_plus_features_seconds']} s"
                + (f", pipeline {r['pipeline_seconds']} s" if "pipeline_seconds" in r else "")
                + f", peak {r.get('peak_rss_mb', 0):,.0f} MB"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--engine", default="pandas", choices=["pandas", "dask"])
    parser.add_argument("--timeout", type=float, default=3600, help="per step, seconds")
    parser.add_argument("--name", default="scale", help="results file name")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated stages to run (in order)"
    )
    parser.add_argument(
        "--keep", type=Path, help="write each cohort's outputs under KEEP/<episodes>/ and keep them"
    )
    args = parser.parse_args()
    stages = tuple(s for s in args.stages.split(",") if s)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(unknown)} (known: {', '.join(STAGES)})")
    results = [one_size(n, args.engine, args.timeout, stages, args.keep) for n in args.sizes]
    path = save(args.name, [{"targets": TARGETS}, *results])
    md = path.with_suffix(".md")
    md.write_text(markdown(results), encoding="utf-8")
    print("wrote", path, "and", md)


if __name__ == "__main__":
    main()
