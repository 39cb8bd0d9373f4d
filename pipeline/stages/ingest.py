"""Stage ``ingest``: validate an export, quarantine bad rows, write typed Parquet tables."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import catalog
from pipeline.config import Params
from pipeline.contract import column_specs
from pipeline.engine.partition import Layout, is_partitioned, read_layout, write_partitioned
from pipeline.engine.tasks import can_fork, run_tasks
from pipeline.ingest.accept import (
    Export,
    TableResult,
    build_report,
    ignored_outliers,
    ingest_in_groups,
    ingest_tables,
)
from pipeline.ingest.manifest import (
    ExportManifest,
    ExtractDate,
    choose_extract_date,
    export_description,
    read_manifest,
    refuse_many_future_dated,
)
from pipeline.ingest.read import InputError
from pipeline.ingest.rekey import key_from_environment
from pipeline.io import atomic_directory, file_digest, write_json, write_parquet
from pipeline.layouts.export import open_export
from pipeline.stages.common import resolve, stage, stage_main


def run(
    params: Params,
    root: str | Path = ".",
    input_dir: str | Path | None = None,
    *,
    show_progress: bool = False,
) -> dict:
    """Ingest ``input_dir`` (default ``paths.input_dir``) into ``paths.interim_dir``.

    The extract date: ``ingest.extract_date`` if set for this run, else the export's
    manifest, else inferred from its latest appointment (``pipeline.ingest.manifest``).
    With ``engine: dask`` the input may also be a partitioned export
    (``engage partition``); the outputs are the same either way.
    Raises ``InputError`` for whole-input problems; nothing is written then.
    """
    source = Path(input_dir) if input_dir is not None else resolve(params.paths, root)["input_dir"]
    with stage("ingest", params, root, show_progress=show_progress, input_dir=str(source)) as s:
        paths, summary = s.paths, s.summary
        key = key_from_environment(params.ingest.rekey_key_env) if params.ingest.rekey else None
        manifest = read_manifest(source)
        choice = choose_extract_date(params.ingest.extract_date, manifest)
        params = params.model_copy(
            update={"ingest": params.ingest.model_copy(update={"extract_date": choice.date})}
        )
        job = _Job(params, paths, source, key, choice, manifest)
        report = (
            _ingest_dask(job, summary)
            if params.engine == "dask"
            else _ingest(job, summary["threads"])
        )
        summary["totals"] = report["totals"]
        summary["extract_date"] = report["extract_date"]
        summary["extract_date_source"] = report["extract_date_source"]
        if report.get("extract_date_ignored"):
            gone = report["extract_date_ignored"]
            summary.setdefault("warnings", []).append(
                f"the inferred extract date leaves out {gone['appointments']} isolated "
                f"far-future appointment(s) dated {', '.join(gone['dates'])} (sessions "
                f"line(s) {', '.join(map(str, gone['source_lines'][:10]))}), quarantined as "
                "future_date; give the extract date if they are real."
            )
        summary["layout"] = report["export"]["layout"]
        summary["outputs"] = {"interim_dir": str(paths["interim_dir"])}
    return s.summary


@dataclass(frozen=True)
class _Job:
    """One ingest: the params (extract date settled), resolved paths, the export folder,
    the re-keying key, the extract-date choice and the export's manifest."""

    params: Params
    paths: dict[str, Path]
    source: Path
    key: bytes | None
    choice: ExtractDate
    manifest: ExportManifest | None


def _ingest(job: _Job, workers: int) -> dict:
    """The pandas engine: the whole export in this process, one table at a time — or, for a
    contract-layout export with ``workers`` > 1, the episodes first and then the other
    tables in groups side by side (``CHILD_GROUPS``), one forked worker per group at a
    time, each writing its own tables (the same files either way)."""
    params, paths, source, key = job.params, job.paths, job.source, job.key
    if is_partitioned(source):
        raise InputError(
            f"{source} is a partitioned export, which only the dask engine reads: set "
            "engine: dask, or point paths.input_dir at the flat export."
        )
    export = open_export(source, params.ingest)
    with atomic_directory(paths["interim_dir"]) as out:
        # Any error discards the staging folder. A mapped layout records across tables which
        # rows of its lookup tables were used (its source report), so it is read here.
        if workers > 1 and can_fork() and export.layout == "contract":
            first, groups = ingest_in_groups(export, params.ingest, key)
            written = [_write_table(out, result, job) for result in first]
            tasks = {name: _group_writer(out, group, job) for name, group in groups.items()}
            done = run_tasks(tasks, workers)
            written += [w for name in groups for w in done[name]]
        else:
            written = [_write_table(out, r, job) for r in ingest_tables(export, params.ingest, key)]
        report = _report(written, export.tables, job, lambda: _digests(export))
        report["export"] = export_description(job.manifest, export.layout, export.mapping_name)
        report["columns_absent"] = export.columns_absent()
        report["source_tables"] = export.source_report()
        write_json(report, out / catalog.INGEST_REPORT.name)
        return report


@dataclass(frozen=True)
class _Written:
    """What the report needs of a table once its files are written."""

    counts: dict
    extract: pd.Timestamp | None
    ignored: dict | None


def _group_writer(
    out: Path, group: Callable[[], Iterator[TableResult]], job: _Job
) -> Callable[[], list[_Written]]:
    """A task writing each table of ``group`` as it comes (one in memory at a time)."""
    return lambda: [_write_table(out, result, job) for result in group()]


def _write_table(out: Path, result: TableResult, job: _Job) -> _Written:
    """Write one table and its quarantine (the sessions checked first for future-dated
    appointments)."""
    ignored = None
    if result.name == "sessions":
        ignored = ignored_outliers(result)
        refuse_many_future_dated(
            result.counts, result.extract_date, job.choice, job.params.ingest, ignored
        )
    write_parquet(result.accepted, out / f"{result.name}.parquet")
    write_parquet(result.quarantine, out / "quarantine" / f"{result.name}.parquet")
    return _Written(result.counts | {"name": result.name}, result.extract_date, ignored)


def _report(
    written: list[_Written],
    files: dict[str, Path],
    job: _Job,
    digests: Callable[[], dict[str, str]],
) -> dict:
    """The ingest report of the tables written, in order (to be completed with what the
    export says of itself, then written by the caller)."""
    extract = written[-1].extract if written else None
    if extract is None:  # the episodes table is required, so at least one table came
        raise InputError("ingest: the export gave no table")
    ignored = next((w.ignored for w in written if w.counts["name"] == "sessions"), None)
    report = build_report(
        [w.counts for w in written],
        files,
        extract,
        job.choice.source,
        job.key is not None,
        ignored,
    )
    report["input_files"] = digests()
    return report


def _digests(export: Export) -> dict[str, str]:
    return {p.name: file_digest(p) for p in export.files.values()}


@contextmanager
def _partitioned(params: Params, source: Path, scratch: Path) -> Iterator[Layout]:
    """The input as a partitioned export: as it is, or a flat export converted into a
    temporary folder beside the outputs. Paths are absolute: workers read the buckets
    themselves (those of a remote cluster through a shared filesystem)."""
    if is_partitioned(source):
        yield read_layout(source.resolve())
        return
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ingest-partitioned-", dir=scratch.resolve()))
    try:
        write_partitioned(
            source,
            tmp / "export",
            params.dask.partitions,
            params.dask.episodes_per_partition,
            params.ingest,
        )
        yield read_layout(tmp / "export")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ingest_dask(job: _Job, summary: dict) -> dict:
    """The dask engine: the same outputs, computed per episode bucket on a Dask cluster."""
    params, paths, source, key = job.params, job.paths, job.source, job.key
    from pipeline.engine.cluster import dask_client, describe
    from pipeline.engine.ingest import ingest_partitioned

    if not is_partitioned(source):
        kind = open_export(source, params.ingest).layout
        if kind != "contract":
            raise InputError(
                f"{source} is in the {kind} layout; the dask engine reads contract-layout "
                "exports. Use engine: pandas, which reads every layout."
            )

    with (
        # first: a wrong address fails before any work
        dask_client(params.dask, params.threads) as client,
        _partitioned(params, source, paths["interim_dir"].parent) as layout,
        atomic_directory(paths["interim_dir"]) as out,
    ):
        summary["dask"] = describe(client, params.dask) | {
            "partitions": layout.partitions,
            "input": "partitioned export" if is_partitioned(source) else "flat export",
        }
        if is_partitioned(source) and params.dask.partitions not in (None, layout.partitions):
            summary["warnings"].append(
                f"dask.partitions is {params.dask.partitions} but the partitioned export has "
                f"{layout.partitions} buckets; its own were used."
            )
        # closing(): the workers' results are released even if writing fails
        with closing(ingest_partitioned(client, layout, params.ingest, key)) as results:
            written = [_write_table(out, r, job) for r in results]
            report = _report(written, layout.files, job, lambda: layout.digests)
        report["export"] = export_description(job.manifest, "contract", None)
        report["columns_absent"] = {
            t: [c.name for c in column_specs(t) if c.name not in cols["columns"]]
            for t, cols in layout.manifest["tables"].items()
        }
        report["source_tables"] = {}
        write_json(report, out / catalog.INGEST_REPORT.name)
        return report


def describe(summary: dict) -> str:
    """What the stage says when it is done (``python -m``, ``engage``)."""
    t = summary["totals"]
    return (
        f"Ingested {t['rows_read']} rows: {t['rows_accepted']} accepted, "
        f"{t['rows_quarantined']} quarantined → {summary['outputs']['interim_dir']}"
    )


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
