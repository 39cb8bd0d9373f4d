"""The synthetic cohort through the real pipeline, in memory, for the teaching notebooks.

``synthetic_study()`` runs the same stage entries as ``dvc repro`` (synthesize → ingest →
features → outcomes) into a folder of its own and hands back every table a notebook needs,
so a notebook never re-implements a step and always shows what the pipeline does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline import catalog
from pipeline.config import Params, load_params
from pipeline.io import read_interim, read_json
from pipeline.models.analysis import analysis_frame
from pipeline.stages.common import resolve


@dataclass
class Study:
    """Everything the upstream stages wrote, read back."""

    root: Path
    params: Params
    export_dir: Path
    """The raw export as a service would send it (CSV files, messy rows included)."""
    tables: dict[str, pd.DataFrame]
    """Accepted, typed tables (``data/interim``)."""
    quarantine: dict[str, pd.DataFrame]
    """Rows ingest held back, with the reason (``data/interim/quarantine``)."""
    ingest_report: dict
    extract_date: pd.Timestamp
    features: pd.DataFrame
    outcomes: pd.DataFrame
    frame: pd.DataFrame
    """One row per episode: features, outcomes, case mix and cluster (what the models use)."""
    truth: pd.DataFrame
    """The generator's ground truth per episode (synthetic data only)."""
    truth_summary: dict = field(default_factory=dict)
    messy_rows: pd.DataFrame | None = None
    """What the generator deliberately broke in the export, and how."""
    workspace: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    """The temporary folder holding ``root`` when none was given (removed with the study,
    or when Python exits)."""


def project_params(start: str | Path = ".") -> Params:
    """The ``params.yaml`` of the project containing ``start`` (a notebook runs from
    ``notebooks/``, so the parents are searched too); the defaults if there is none."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").exists() and (folder / "dvc.yaml").exists():
            return load_params(folder / "params.yaml")
    return Params()


def study_params(params: Params | None = None, **synthetic: object) -> Params:
    """The project's params (``project_params``) with paths relative to the study folder
    and any ``synthetic`` overrides (e.g. ``n_episodes=1000``)."""
    if params is None:
        params = project_params()
    data = params.model_dump(mode="json")
    data["paths"] = Params().paths.model_dump()
    data["synthetic"] |= synthetic
    return Params(**data)  # ingest takes the extract date from the cohort's export.json


def load_study(root: str | Path, params: Params) -> Study:
    """Read back a folder the upstream stages wrote."""
    paths = resolve(params.paths, root)
    tables, report, extract = read_interim(paths["interim_dir"])
    quarantine = {
        p.stem: pd.read_parquet(p)
        for p in sorted((paths["interim_dir"] / "quarantine").glob("*.parquet"))
    }
    features = pd.read_parquet(catalog.FEATURES.path(paths))
    outcomes = pd.read_parquet(catalog.OUTCOMES.path(paths))
    return Study(
        root=Path(root),
        params=params,
        export_dir=paths["input_dir"],
        tables=tables,
        quarantine=quarantine,
        ingest_report=report,
        extract_date=extract,
        features=features,
        outcomes=outcomes,
        frame=analysis_frame(features, outcomes, tables["episodes"], params.models),
        truth=pd.read_parquet(catalog.TRUTH_EPISODES.path(paths)),
        truth_summary=read_json(catalog.TRUTH_SUMMARY.path(paths)),
        messy_rows=pd.read_csv(catalog.MESSY_ROWS.path(paths)),
    )


def synthetic_study(
    root: str | Path | None = None, params: Params | None = None, **synthetic: object
) -> Study:
    """Generate the synthetic cohort and run ingest, features and outcomes on it.

    ``root`` defaults to a new temporary folder; ``synthetic`` overrides the cohort's
    params (``n_episodes``, ``seed`` …). The default cohort takes a few seconds.
    """
    from pipeline.stages.registry import STAGES

    params = study_params(params, **synthetic)
    workspace = tempfile.TemporaryDirectory(prefix="engage-study-") if root is None else None
    folder = Path(workspace.name) if workspace is not None else Path(root or ".")
    for name in catalog.UPSTREAM_STAGES:
        STAGES[name](params, folder)
    study = load_study(folder, params)
    study.workspace = workspace
    return study
