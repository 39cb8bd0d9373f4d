"""Stage ``ingest``: validate an export, quarantine bad rows, write typed Parquet tables."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.ingest.accept import build_report, ingest_tables
from pipeline.ingest.read import find_tables
from pipeline.ingest.rekey import key_from_environment
from pipeline.io import atomic_directory, write_json, write_parquet
from pipeline.stages.common import file_digest, resolve, stage_timer


def run(params: Params, root: str | Path = ".", input_dir: str | Path | None = None) -> dict:
    """Ingest ``input_dir`` (default ``paths.input_dir``) into ``paths.interim_dir``.

    Raises ``InputError`` for whole-input problems; nothing is written then.
    """
    paths = resolve(params.paths, root)
    source = Path(input_dir) if input_dir is not None else paths["input_dir"]
    summary: dict = {"stage": "ingest", "input_dir": str(source)}
    with stage_timer(summary):
        key = key_from_environment(params.ingest.rekey_key_env) if params.ingest.rekey else None
        files = find_tables(source)
        counts, extract = [], None
        with atomic_directory(paths["interim_dir"]) as out:
            # One table in memory at a time; any error discards the staging folder.
            for result in ingest_tables(files, params.ingest, key):
                write_parquet(result.accepted, out / f"{result.name}.parquet")
                write_parquet(result.quarantine, out / "quarantine" / f"{result.name}.parquet")
                counts.append(result.counts | {"name": result.name})
                extract = result.extract_date
            report = build_report(counts, files, params.ingest, extract, key is not None)
            report["input_files"] = {p.name: file_digest(p) for p in files.values()}
            write_json(report, out / "ingest_report.json")
        summary["totals"] = report["totals"]
        summary["outputs"] = {"interim_dir": str(paths["interim_dir"])}
    write_json(summary, paths["logs_dir"] / "ingest.json")
    return summary


def main() -> None:
    summary = run(load_params())
    t = summary["totals"]
    print(
        f"Ingested {t['rows_read']} rows: {t['rows_accepted']} accepted, "
        f"{t['rows_quarantined']} quarantined → {summary['outputs']['interim_dir']}"
    )


if __name__ == "__main__":
    main()
