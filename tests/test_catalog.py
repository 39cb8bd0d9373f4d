"""The results catalog is the one declaration: every entry reaches its producer, the
metrics, the report and the docs, and nothing is produced that it does not declare."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import catalog

ROOT = Path(__file__).resolve().parents[1]
MODELS_DOC = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")


def test_model_ids_are_built_one_way():
    assert catalog.model_id("poor_outcome", "index", True) == "poor_outcome: index (adjusted)"
    assert catalog.model_id("dropout", "flags group", False) == (
        "dropout: flags group (unadjusted)"
    )
    assert catalog.model_id("dose-response") == "dose-response"
    assert catalog.TRAJECTORY_CLIENT == "trajectory: client intercept and slope"


def test_every_declaration_is_consistent():
    names = [t.name for t in catalog.TABLES]
    assert len(names) == len(set(names))
    for t in catalog.TABLES:
        assert t.stage in catalog.MODEL_STAGES, t
        assert t.section is None or t.section in catalog.SECTIONS, t
    for section in catalog.SECTIONS:
        assert catalog.section_tables(section), f"section {section!r} shows no table"
    for metric in catalog.EFFECT_METRICS:
        assert metric.table in catalog.TABLE, metric
    assert set(catalog.UPSTREAM_STAGES) < {s.name for s in catalog.STAGES}
    assert set(catalog.MODEL_STAGES) <= set(catalog.ANALYSIS_STAGES)


def test_an_undeclared_table_is_a_clear_error():
    with pytest.raises(KeyError, match="not declared"):
        catalog.table("poor_outcome_v2")


def test_every_table_and_metric_is_documented():
    for t in catalog.TABLES:
        assert f"{t.name}" in MODELS_DOC, f"docs/models.md does not describe {t.name}"
    for metric in catalog.EFFECT_METRICS:
        assert f"`{metric.name}`" in MODELS_DOC, f"docs/models.md lacks metric {metric.name}"


def test_the_registry_runs_the_catalogs_stages_in_order():
    from pipeline.stages.registry import ANALYSIS_STAGES, STAGES

    assert list(STAGES) == [s.name for s in catalog.STAGES]
    assert list(ANALYSIS_STAGES) == list(catalog.ANALYSIS_STAGES)
