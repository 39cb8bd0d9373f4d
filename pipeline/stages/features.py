"""Stage ``features``: engagement features in the landmark window, one row per episode."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import catalog
from pipeline.config import Params
from pipeline.engine.tasks import run_tasks
from pipeline.features.build import FEATURE_INPUTS, engagement_features
from pipeline.io import INTERIM_TABLES, read_interim, read_json, write_parquet
from pipeline.stages.common import stage, stage_main


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    with stage("features", params, root, show_progress=show_progress) as s:
        paths, summary = s.paths, s.summary
        if params.engine == "dask":
            features, report = _features_dask(params, paths["interim_dir"], summary)
        else:
            tables, report, extract = read_interim(paths["interim_dir"], columns=FEATURE_INPUTS)
            features = engagement_features(
                tables,
                params.features,
                params.outcomes.primary_instrument,
                extract,
                # the blocks side by side, one forked worker per allowed CPU
                lambda blocks: run_tasks(blocks, summary["threads"]),
            )
        write_parquet(features, catalog.FEATURES.path(paths))
        summary |= {
            "episodes": len(features),
            "with_window": int(features["has_sessions"].sum()),
            "window_complete": int(features["window_complete"].sum()),
            "optional_tables_absent": report["optional_tables_absent"],
            "outputs": {"features": str(catalog.FEATURES.path(paths))},
        }
    return s.summary


def _features_dask(params: Params, interim: Path, summary: dict) -> tuple[pd.DataFrame, dict]:
    """The same table as the pandas engine, computed per episode bucket on a Dask cluster."""
    import pyarrow.parquet as pq

    from pipeline.engine.buckets import n_partitions
    from pipeline.engine.cluster import dask_client, describe
    from pipeline.engine.features import features_partitioned

    report = read_json(interim / catalog.INGEST_REPORT.name)
    files = {t: (interim / f"{t}.parquet").resolve() for t in INTERIM_TABLES}  # read by workers
    files = {t: p for t, p in files.items() if p.exists()}
    if "episodes" not in files:
        raise FileNotFoundError(2, "No such file", str(interim / "episodes.parquet"))
    k = n_partitions(
        pq.ParquetFile(files["episodes"]).metadata.num_rows,
        params.dask.partitions,
        params.dask.episodes_per_partition,
    )
    with dask_client(params.dask, params.threads) as client:
        summary["dask"] = describe(client, params.dask) | {"partitions": k}
        features = features_partitioned(
            client,
            files,
            k,
            params.features,
            params.outcomes.primary_instrument,
            pd.Timestamp(report["extract_date"]),
        )
    return features, report


def describe(summary: dict) -> str:
    """What the stage says when it is done (``python -m``, ``engage``)."""
    return (
        f"Features for {summary['episodes']} episodes ({summary['window_complete']} with a "
        f"complete window) → {summary['outputs']['features']}"
    )


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
