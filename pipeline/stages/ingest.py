"""Stage ``ingest``: validate an export, quarantine bad rows, write typed Parquet tables."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.ingest.accept import ingest_dataset
from pipeline.ingest.read import read_dataset
from pipeline.ingest.rekey import key_from_environment
from pipeline.io import atomic_directory, write_json, write_parquet
from pipeline.stages.common import file_digest, resolve, stage_timer


def run(params: Params, root: str | Path = ".", input_dir: str | Path | None = None) -> dict:
    """Ingest ``input_dir`` (default ``paths.input_dir``) into ``paths.interim_dir``.

    Raises ``InputError`` (nothing written) for whole-input problems.
    """
    paths = resolve(params.paths, root)
    source = Path(input_dir) if input_dir is not None else paths["input_dir"]
    summary: dict = {"stage": "ingest", "input_dir": str(source)}
    with stage_timer(summary):
        key = key_from_environment(params.ingest.rekey_key_env) if params.ingest.rekey else None
        raw = read_dataset(source)
        result = ingest_dataset(raw, params.ingest, key)
        result.report["input_files"] = {t.path.name: file_digest(t.path) for t in raw.values()}
        with atomic_directory(paths["interim_dir"]) as out:
            for name, df in result.tables.items():
                write_parquet(df, out / f"{name}.parquet")
            for name, df in result.quarantine.items():
                write_parquet(df, out / "quarantine" / f"{name}.parquet")
            write_json(result.report, out / "ingest_report.json")
        summary["totals"] = result.report["totals"]
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
