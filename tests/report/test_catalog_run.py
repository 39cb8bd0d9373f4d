"""On a real run, every catalog entry reaches the metrics, the report and the docs."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import catalog

MODELS_DOC = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text("utf-8")


def test_every_declared_model_reaches_metrics_report_and_docs(reported):
    """On a real run: each table a model stage wrote is declared for that stage; each
    declared metric is in metrics.json; each table with a section is in the technical
    report; each model card's analysis is documented."""
    root, params, _ = reported
    paths = {k: root / v for k, v in params.paths.model_dump().items()}
    written = {
        csv.stem: stage
        for stage in catalog.MODEL_STAGES
        for csv in (catalog.exact_results(stage).path(paths) / "tables").glob("*.csv")
    }
    for name, stage in written.items():
        assert catalog.table(name).stage == stage
    unproduced = {t.name for t in catalog.TABLES} - set(written)
    assert not unproduced, f"declared but not produced on the small cohort: {unproduced}"

    metrics = json.loads(catalog.METRICS.path(paths).read_text())
    for metric in catalog.EFFECT_METRICS:
        assert metric.name in metrics, f"{metric.name} ({metric.model}) missing from metrics"
        assert metrics[f"{metric.name}_ci_low"] < metrics[metric.name]

    technical = catalog.TECHNICAL_REPORT.path(paths).read_text(encoding="utf-8")
    for section in catalog.SECTIONS:
        assert section in technical
        for name in catalog.section_tables(section):
            assert name in technical, f"{name} not shown in section {section!r}"

    cards = [
        json.loads(p.read_text())["model"]
        for stage in catalog.MODEL_STAGES
        for p in (catalog.exact_results(stage).path(paths) / "model_cards").glob("*.json")
    ]
    analyses = {m.split(":")[0] for m in cards}
    for analysis in analyses:
        assert analysis in MODELS_DOC, f"docs/models.md does not describe {analysis!r} models"
