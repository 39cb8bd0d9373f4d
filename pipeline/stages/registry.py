"""The analysis stages in order: what `engage run --input DIR --out DIR` executes.

Kept apart from ``pipeline/stages/__init__.py`` so that importing one stage does not import
them all (dvc.yaml lists each stage's real dependencies).
"""

from __future__ import annotations

from pipeline.stages import (
    features,
    ingest,
    metrics,
    missing_data,
    models,
    outcomes,
    prediction,
    report,
)

ANALYSIS_STAGES = {
    "ingest": ingest.run,
    "features": features.run,
    "outcomes": outcomes.run,
    "models": models.run,
    "prediction": prediction.run,
    "missing_data": missing_data.run,
    "metrics": metrics.run,
    "report": report.run,
}
