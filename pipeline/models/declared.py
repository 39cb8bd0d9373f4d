"""The analysis plan applied to the fitted models: the primary analysis, the secondary
family with its multiplicity correction, and the label of every other model (exploratory).

params.yaml ``analysis:`` names the primary analysis (one outcome, one exposure, one term:
tested at ``alpha`` with no adjustment) and a family of secondary analyses (every exposure
term of each is one test; their p-values are adjusted together by Holm's step-down method,
or Bonferroni's). Each is the *adjusted* model of the battery the outcome belongs to
(``catalog.model_id(outcome, exposure, True)``). Any other model is exploratory: its
estimate and interval describe the data, and its p-value is not a test.

Pure: a function of the models stage's tables and the params.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.config import OUTCOME_MODELS, AnalysisParams, DeclaredAnalysis, ModelsParams

DECLARED_COLUMNS = [
    "role",
    "analysis",
    "outcome",
    "exposure",
    "model_type",
    "model",
    "term",
    "scale",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_family",
    "multiplicity",
    "alpha",
    "verdict",
    "n_analysed",
    "status",
    "level_min",
]
ROLES = ("primary", "secondary")


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (strong control of the family-wise error rate):
    sort ascending, multiply the i-th smallest (from 0) by m − i, carry the running maximum,
    cap at 1. Missing p-values are left out of the family and stay missing."""
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    known = np.flatnonzero(~np.isnan(p))
    if not len(known):
        return out
    order = known[np.argsort(p[known], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def bonferroni(p_values: np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted p-values: each times the family's size, capped at 1."""
    p = np.asarray(p_values, float)
    return np.minimum(p * int((~np.isnan(p)).sum()), 1.0)


ADJUST = {"holm": holm, "bonferroni": bonferroni}


def exposure_terms(declared: DeclaredAnalysis, models: ModelsParams) -> list[str]:
    """The columns whose terms are the analysis's tests: a block's features, a flag, or the
    flags group's levels (``flags_group_1``, ``flags_group_2+``)."""
    if declared.exposure == "flags group":
        return ["flags_group_"]
    return list(models.blocks.get(declared.exposure, (declared.exposure,)))


def _rows(
    tables: dict[str, pd.DataFrame], declared: DeclaredAnalysis, models: ModelsParams
) -> pd.DataFrame:
    model = catalog.model_id(declared.outcome, declared.exposure, True)
    table = tables.get(declared.outcome)
    if table is None or "model" not in table:  # no model of this outcome could be fitted
        table = pd.DataFrame(columns=["model", "term"])
    mine = table[table["model"] == model]
    starts = tuple(exposure_terms(declared, models))
    terms = mine[mine["term"].astype(str).str.startswith(starts)]
    if terms.empty:  # not fitted (its card says why): one row that says so
        return pd.DataFrame(
            {"model": [model], "term": [", ".join(starts)], "status": ["not fitted"]}
        )
    return terms


def declared_analyses(
    tables: dict[str, pd.DataFrame], plan: AnalysisParams, models: ModelsParams
) -> pd.DataFrame:
    """One row per tested term of the primary and secondary analyses, primary first: the
    estimate and interval of its adjusted model, the p-value, the p-value adjusted across
    the secondary family (the primary's is its own), and the verdict at ``plan.alpha``."""
    parts = []
    for role, declared in [
        ("primary", plan.primary),
        *(("secondary", a) for a in plan.secondary),
    ]:
        rows = _rows(tables, declared, models).assign(
            role=role,
            analysis=declared.label,
            outcome=declared.outcome,
            exposure=declared.exposure,
            model_type=OUTCOME_MODELS[declared.outcome],
        )
        parts.append(rows)
    out = pd.concat(parts, ignore_index=True).reindex(columns=DECLARED_COLUMNS)
    p = pd.to_numeric(out["p_value"], errors="coerce").to_numpy(float)
    secondary = (out["role"] == "secondary").to_numpy()
    adjusted = p.copy()
    adjusted[secondary] = ADJUST[plan.multiplicity](p[secondary])
    out["p_family"] = adjusted
    out["multiplicity"] = np.where(secondary, plan.multiplicity, "none (the one primary test)")
    out["alpha"] = plan.alpha
    out["verdict"] = [
        "not fitted" if np.isnan(q) else ("below alpha" if q < plan.alpha else "not below alpha")
        for q in adjusted
    ]
    out["status"] = out["status"].fillna("fitted")
    return out


def primary_row(table: pd.DataFrame) -> pd.Series | None:
    """The primary analysis's row of ``declared_analyses`` (None if it was not fitted)."""
    rows = table[(table["role"] == "primary") & (table["status"] == "fitted")]
    return None if rows.empty else rows.iloc[0]
