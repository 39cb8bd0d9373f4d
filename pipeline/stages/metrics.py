"""Stage ``metrics``: the run's headline numbers → ``reports/metrics.json`` (DVC metrics)."""

from __future__ import annotations

from pathlib import Path

from pipeline import catalog
from pipeline.config import DisclosureParams, Params
from pipeline.disclosure import count
from pipeline.io import read_json, write_json
from pipeline.report.metrics import cohort_metrics, effect_metrics, ordered, primary_metrics
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import load_analysis_frame, read_results


def disclose_counts(metrics: dict, params: DisclosureParams) -> dict:
    """Counts of people (``n_*``) rounded or suppressed like every other shared count; a
    suppressed count is reported as null with a ``<name>_suppressed`` flag."""
    out = dict(metrics)
    for key, value in metrics.items():
        if key.startswith("n_"):
            cell = count(value, params)
            out[key] = None if cell.value is None else int(cell.value)
            if cell.state == "suppressed":
                out[f"{key}_suppressed"] = True
    return out


def rounded(key: str, value):
    """Floats to 6 decimals; p-values to 4 significant digits (6 decimals would print a
    small p-value as 0)."""
    if not isinstance(value, float):
        return value
    return float(f"{value:.4g}") if key.endswith(("p_value", "_p")) else round(value, 6)


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    with stage("metrics", params, root, show_progress=show_progress) as s:
        paths, summary = s.paths, s.summary
        frame, _, _ = load_analysis_frame(paths, params)
        tables = read_results(paths, *catalog.stages_of(catalog.METRIC_SOURCES))
        metrics = primary_metrics(tables, params.disclosure)
        metrics |= disclose_counts(cohort_metrics(frame, params.disclosure), params.disclosure)
        metrics |= effect_metrics(tables, params.disclosure)
        metrics |= read_json(catalog.PREDICTION_HEADLINE.path(paths))
        metrics = {k: rounded(k, v) for k, v in metrics.items()}
        write_json(ordered(metrics), catalog.METRICS.path(paths), sort_keys=False)
        summary["outputs"] = {"metrics": str(catalog.METRICS.path(paths))}
        summary["metrics"] = len(metrics)
    return s.summary


def describe(summary: dict) -> str:
    """What the stage says when it is done (``python -m``, ``engage``)."""
    return f"{summary['metrics']} metrics → {summary['outputs']['metrics']}"


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
