"""Writing a model stage's results: tidy tables and model cards, each folder replaced whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import catalog
from pipeline.config import Params
from pipeline.disclosure import safe_card, safe_result_table
from pipeline.io import atomic_directory, read_interim, write_csv, write_json
from pipeline.models.analysis import analysis_frame
from pipeline.models.tidy import Results, card_slug


def load_inputs(
    paths: dict[str, Path], tables: tuple[str, ...] = ("episodes",)
) -> tuple[dict[str, pd.DataFrame], dict, pd.DataFrame, pd.DataFrame]:
    """What every model stage reads: the interim ``tables`` it needs (at national scale the
    others are tens of millions of rows), the ingest report, the features and the
    outcomes."""
    interim, report, _ = read_interim(paths["interim_dir"], tables)
    features = pd.read_parquet(catalog.FEATURES.path(paths))
    outcomes = pd.read_parquet(catalog.OUTCOMES.path(paths))
    return interim, report, features, outcomes


def load_analysis_frame(
    paths: dict[str, Path], params: Params
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The per-episode analysis frame, and the features and outcomes it was built from."""
    tables, _, features, outcomes = load_inputs(paths)
    return analysis_frame(features, outcomes, tables["episodes"], params.models), features, outcomes


def write_results(results: Results, paths: dict[str, Path], stage: str, params: Params) -> dict:
    """Exact tables and cards to ``data/results/<stage>/{tables,model_cards}/`` (for the
    analyst); disclosure-controlled copies to ``reports/tables/<stage>/`` and
    ``reports/model_cards/<stage>/`` (for sharing). Each folder is replaced whole."""
    exact_dir = catalog.exact_results(stage).path(paths)
    tables_dir = catalog.shared_tables(stage).path(paths)
    cards_dir = catalog.shared_cards(stage).path(paths)
    d = params.disclosure
    with atomic_directory(exact_dir) as folder:
        (folder / "tables").mkdir()
        (folder / "model_cards").mkdir()
        for name, table in sorted(results.tables.items()):
            write_csv(table, folder / "tables" / f"{name}.csv", float_format="%.10g")
        for card in results.cards:
            write_json(card.as_dict(), folder / "model_cards" / f"{card_slug(card.model)}.json")
    with atomic_directory(tables_dir) as folder:
        for name, table in sorted(results.tables.items()):
            write_csv(safe_result_table(table, d, name), folder / f"{name}.csv")
    with atomic_directory(cards_dir) as folder:
        for card in results.cards:
            write_json(safe_card(card.as_dict(), d), folder / f"{card_slug(card.model)}.json")
    status = pd.Series([c.status for c in results.cards], dtype=object).value_counts()
    return {
        "models": len(results.cards),
        "status": {str(k): int(v) for k, v in status.items()},
        "not_fitted": {c.model: c.notes for c in results.cards if c.status == "not fitted"},
        "outputs": {
            "tables": str(tables_dir),
            "model_cards": str(cards_dir),
            "exact": str(exact_dir),
        },
    }


def read_results(paths: dict[str, Path], *stages: str) -> dict[str, pd.DataFrame]:
    """The exact tables of the given model stages, by name."""
    files = [
        csv
        for stage in stages
        for csv in sorted((catalog.exact_results(stage).path(paths) / "tables").glob("*.csv"))
    ]
    return {csv.stem: table for csv in files if (table := _read_table(csv)) is not None}


def _read_table(csv: Path) -> pd.DataFrame | None:
    """A result table; None for one with no column (no model of it could be fitted), which
    readers then treat as absent."""
    try:
        return pd.read_csv(csv)
    except pd.errors.EmptyDataError:
        return None


def describe_results(summary: dict) -> str:
    """What ``python -m pipeline.stages.<name>`` prints for a model stage (what ``dvc
    repro`` shows): one line, plus every model that could not be fitted and why."""
    counts = ", ".join(f"{v} {k}" for k, v in summary["status"].items())
    lines = [f"{summary['models']} models ({counts}) → {summary['outputs']['tables']}"]
    lines += [f"  {model}: {'; '.join(why)}" for model, why in summary["not_fitted"].items()]
    return "\n".join(lines)
