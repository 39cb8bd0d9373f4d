"""The stage entries by name, in the catalog's order (``pipeline.catalog.STAGES``): what
``engage run --input DIR --out DIR`` and the teaching notebooks execute.

Kept apart from ``pipeline/stages/__init__.py`` so that importing one stage does not import
them all (dvc.yaml lists each stage's real dependencies).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import catalog
from pipeline.stages import (
    features,
    ingest,
    metrics,
    missing_data,
    models,
    outcomes,
    prediction,
    report,
    synthesize,
    worklist,
)

_MODULES = {
    m.__name__.rsplit(".", 1)[1]: m
    for m in (
        synthesize,
        ingest,
        features,
        outcomes,
        models,
        prediction,
        worklist,
        missing_data,
        metrics,
    )
}
_MODULES["report"] = report
STAGES: dict[str, Callable[..., dict]] = {s.name: _MODULES[s.name].run for s in catalog.STAGES}
"""Every stage's ``run(params, root)``, in order (a catalog entry without a module fails
here, at import)."""
ANALYSIS_STAGES = {name: STAGES[name] for name in catalog.ANALYSIS_STAGES}
