"""Could the main result be an artefact of missing final scores?

The main effect is the adjusted odds ratio of poor outcome per SD of the disengagement index
(`poor_outcome: index (adjusted)`). Disengaged clients are the likeliest to have no final
score, so it is re-estimated four ways on the landmark population:

- complete cases (the main analysis);
- last observation carried forward (the last score on record, or the baseline: no change);
- multiple imputation by chained equations (statsmodels ``MICEData``, predictive mean
  matching) of the final score, with the early-window features as auxiliaries, the poor
  outcome derived from each imputed score by the same rule as the observed one, and the
  estimates pooled with Rubin's rules;
- delta adjustment (missing not at random): every imputed final score shifted by δ points
  (positive = worse) before the outcome is derived, over a grid of δ; the tipping point is
  the δ nearest zero at which the conclusion (an interval excluding 1, on the same side)
  would change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.imputation.mice import MICEData

from pipeline import catalog
from pipeline.config import MissingDataParams, ModelsParams, OutcomesParams
from pipeline.instruments import get_instrument
from pipeline.models.analysis import (
    CLUSTER,
    FLAGS_GROUP,
    adjustment,
    pool_for_model,
    prepare_rows,
    sample_clusters,
)
from pipeline.models.effects import fit_logistic
from pipeline.models.tidy import ModelCard, ModelError, Results, captured_warnings
from pipeline.outcomes import instrument_outcomes, poor_outcome_rule

EXPOSURE = "disengagement_index"
Z = 1.959964


@dataclass(frozen=True)
class Pooled:
    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    fraction_missing_information: float


def rubin(estimates: np.ndarray, variances: np.ndarray) -> Pooled:
    """Pool one parameter over m imputations (Rubin 1987): the mean estimate; total variance
    T = W + (1 + 1/m)·B (W within, B between); t reference with
    df = (m − 1)·(1 + 1/r)², r = (1 + 1/m)·B / W."""
    q = np.asarray(estimates, float)
    u = np.asarray(variances, float)
    m = len(q)
    if m < 2:
        raise ValueError("Rubin's rules need at least two imputations")
    qbar, w, b = q.mean(), u.mean(), q.var(ddof=1)
    t = w + (1 + 1 / m) * b
    r = (1 + 1 / m) * b / w if w > 0 else np.inf
    df = (m - 1) * (1 + 1 / r) ** 2 if r > 0 else np.inf
    se = float(np.sqrt(t))
    crit = stats.t.ppf(0.975, df) if np.isfinite(df) else Z
    z = abs(qbar) / se
    p = 2 * stats.t.sf(z, df) if np.isfinite(df) else 2 * stats.norm.sf(z)
    fmi = (r + 2 / (df + 3)) / (r + 1) if np.isfinite(df) else 0.0
    return Pooled(float(qbar), se, float(df), qbar - crit * se, qbar + crit * se, float(p), fmi)


def landmark_population(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the landmark poor outcome is defined for when scored: in treatment at the
    landmark and in the outcome's population (``outcomes.outcome_population``: at caseness
    at baseline by default), whether or not a final score was recorded."""
    inside = frame["in_treatment_at_landmark"].astype(bool)
    if "outcome_population" in frame:
        inside &= frame["outcome_population"].astype("boolean").fillna(False).astype(bool)
    return frame[inside]


def missing_by_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Who lacks a final score: episodes of the landmark population, by flags group."""
    pop = landmark_population(frame).copy()
    pop["group"] = pop[FLAGS_GROUP].fillna("not assessed")
    pop["missing_final"] = pop["poor_outcome"].isna()
    rows = pop.groupby("group", sort=True)["missing_final"].agg(["size", "sum"])
    rows.loc["all"] = [len(pop), int(pop["missing_final"].sum())]
    rows = rows.rename(columns={"size": "episodes", "sum": "missing_final_score"})
    rows["share_missing"] = rows["missing_final_score"] / rows["episodes"]
    return rows.reset_index()


def _poor(baseline: pd.Series, final: pd.Series, outcomes: OutcomesParams) -> pd.Series:
    summary = pd.DataFrame(
        {"baseline": baseline, "last": final, "n": np.where(final.notna(), 2, 1)},
        index=baseline.index,
    )
    primary = instrument_outcomes(summary, outcomes.primary_instrument)
    return poor_outcome_rule(primary, outcomes.poor_outcome, outcomes.population)


def _log_effect(rows: pd.DataFrame, outcome: str, predictors: list[str], name: str):
    """The exposure's log odds ratio and its (cluster-robust) SE, kept by the fit, and the
    card."""
    fit = fit_logistic(rows, outcome, predictors, CLUSTER, name)
    return float(fit.params[EXPOSURE]), float(fit.se[EXPOSURE]), fit.card


def effect_with_outcome(frame: pd.DataFrame, outcome: str, models: ModelsParams) -> float:
    """The main effect (adjusted odds ratio per SD of the index) on the sensitivity
    analysis's population and unit, with ``outcome`` as the outcome column: e.g. the
    synthetic generator's complete-data outcome, which every missing-data method is trying
    to recover."""
    pop = landmark_population(frame)
    pop, _ = pool_for_model(pop, models, "poor_outcome", pop["poor_outcome"].notna())
    adjust = adjustment(pop, models)
    rows = prepare_rows(pop, [outcome, CLUSTER], [EXPOSURE], adjust, reference="poor_outcome")
    log_or, _, _ = _log_effect(rows, outcome, [EXPOSURE, *adjust], f"{outcome} ~ index")
    return float(np.exp(log_or))


def _mice_frame(rows: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric frame with formula-safe names for MICEData; categorical columns one-hot."""
    numeric = rows[columns].copy()
    for c in columns:
        if not pd.api.types.is_numeric_dtype(numeric[c]):
            numeric = numeric.drop(columns=c).join(
                pd.get_dummies(rows[c].astype(str), prefix=c, drop_first=True, dtype=float)
            )
    safe = {c: f"v{i}_{re.sub(r'[^A-Za-z0-9_]', '_', c)}" for i, c in enumerate(numeric.columns)}
    return numeric.rename(columns=safe).astype(float).reset_index(drop=True), safe


def impute_final_scores(
    rows: pd.DataFrame,
    auxiliaries: list[str],
    params: MissingDataParams,
    instrument: str,
    case_mix: Sequence[str] = (),
) -> list[np.ndarray]:
    """``params.imputations`` completed copies of the final score by chained equations with
    predictive mean matching (statsmodels MICEData), one cycle each.

    Only the final score is imputed: an auxiliary with gaps enters as its median-filled
    value plus a missing indicator (auxiliaries inform the imputation but are not in the
    analysis model, so this keeps their information without a second imputation model).
    PMM draws observed scores, so imputed scores stay on the instrument's scale.

    With the final score the only incomplete variable, the chain has no state: each cycle
    refits its model on the rows where it is observed (which never change) with draws of
    the parameters, so every cycle is an independent proper imputation and cycles between
    them ("burn-in") would only repeat the same draw's distribution.
    """
    data = rows[["final", "baseline_score", EXPOSURE]].copy()
    # The analysis model's covariates belong in the imputation model (else the adjusted
    # association is biased towards the null); categorical ones one-hot.
    for c in case_mix:
        data = data.join(
            pd.get_dummies(rows[c].astype(str), prefix=c, drop_first=True, dtype=float)
        )
    for c in auxiliaries:
        values = rows[c].astype(float)
        if values.isna().any():
            data[f"{c}_missing"] = values.isna().astype(float)
        data[c] = values.fillna(values.median())
    # Columns constant where the score is observed (the imputation model is fitted there) or
    # duplicated make that regression rank-deficient.
    observed = data["final"].notna()
    keep = data.loc[observed].nunique() > 1
    keep["final"] = True
    data = data.loc[:, keep].T.drop_duplicates().T
    data, safe = _mice_frame(data, list(data.columns))
    mice = MICEData(data, k_pmm=20, rng=np.random.default_rng(params.seed))
    spec = get_instrument(instrument)
    out = []
    for _ in range(params.imputations):
        mice.update_all(1)
        out.append(np.clip(mice.data[safe["final"]].to_numpy(), spec.minimum, spec.maximum))
    return out


Execute = Callable[[dict[str, Callable[[], Any]]], dict[str, Any]]
"""Runs independent tasks (by label) and returns their results by label: one after the
other (``in_order``), or side by side (the stage forks workers, ``pipeline/engine/tasks``)."""


def in_order(tasks: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    return {label: task() for label, task in tasks.items()}


def sensitivity(
    frame: pd.DataFrame,
    models: ModelsParams,
    params: MissingDataParams,
    outcomes: OutcomesParams,
    execute: Execute = in_order,
) -> Results:
    """The main effect under complete cases, LOCF, MI and delta-adjusted MI (above
    ``params.max_episodes``, on a random sample of whole clusters; who is missing is
    always counted on every episode). The pooled fits at each delta, and the counts of who
    is missing, are independent: ``execute`` may run them side by side."""
    everyone = frame
    frame, sampled = sample_clusters(
        frame, params.max_episodes, params.seed, "missing_data.max_episodes"
    )
    ctx = _analysis_rows(frame, models, params, outcomes)
    table, cards = [], []
    for analysis in (_complete_cases, _last_observation):
        row, card = analysis(ctx)
        table.append(row)
        cards.append(card)
    mi_rows, mi_card, by_group = _multiple_imputation(
        ctx, params, execute, {"missing_by_group": lambda: missing_by_group(everyone)}
    )
    table += mi_rows
    cards.append(mi_card)
    if sampled:
        for card in cards:
            card.notes.append(sampled)
    result = pd.DataFrame(table)
    return Results(
        {
            "missing_by_group": by_group["missing_by_group"],
            "missing_data_sensitivity": result,
            "missing_data_tipping_point": tipping_point(result),
        },
        cards,
    )


@dataclass(frozen=True)
class _Rows:
    """The rows every sensitivity analysis shares: the landmark population prepared as for
    the main model (per SD among complete cases), which final scores are missing, the
    analysis model's predictors, the imputation's auxiliaries and the outcome rule."""

    rows: pd.DataFrame
    missing: np.ndarray
    predictors: list[str]
    case_mix: list[str]
    auxiliaries: list[str]
    outcomes: OutcomesParams


def _analysis_rows(
    frame: pd.DataFrame,
    models: ModelsParams,
    params: MissingDataParams,
    outcomes: OutcomesParams,
) -> _Rows:
    """The shared rows (``_Rows``); a clear error when no score or every score is missing."""
    pop = landmark_population(frame)
    # the case-mix levels pooled as in the main (complete-case) analysis
    pop, _ = pool_for_model(pop, models, "poor_outcome", pop["poor_outcome"].notna())
    adjust = adjustment(pop, models)
    auxiliaries = [c for c in params.auxiliaries if c in pop and pop[c].notna().any()]
    # Scores on their own scale (the model columns are standardised by prepare_rows).
    pop = pop.assign(baseline_score=pop["primary_baseline"], last_score=pop["primary_last"])
    # Per SD among complete cases: the complete-case row reproduces the main analysis.
    rows = prepare_rows(
        pop, ["primary_baseline", CLUSTER], [EXPOSURE], adjust, reference="poor_outcome"
    )
    rows = rows.assign(final=rows["last_score"].where(rows["poor_outcome"].notna()))
    missing = rows["final"].isna().to_numpy()
    if missing.all() or not missing.any():
        raise ModelError(
            "missing-data sensitivity: needs episodes both with and without a final score"
        )
    case_mix = [c for c in adjust if c != "primary_baseline"]
    return _Rows(rows, missing, [EXPOSURE, *adjust], case_mix, auxiliaries, outcomes)


@dataclass(frozen=True)
class _Effect:
    """A log odds ratio with its error: ``df`` infinite for a single fit (normal
    interval), Rubin's degrees of freedom for a pooled one."""

    estimate: float
    se: float
    df: float = np.inf
    p_value: float | None = None
    fmi: float = np.nan


def _row(ctx: _Rows, analysis: str, delta: float, effect: _Effect, n: int) -> dict:
    """One row of the sensitivity table: the odds ratio per SD and its interval."""
    est, se = effect.estimate, effect.se
    crit = stats.t.ppf(0.975, effect.df) if np.isfinite(effect.df) else Z
    p = float(2 * stats.norm.sf(abs(est) / se)) if effect.p_value is None else effect.p_value
    return {
        "analysis": analysis,
        "delta": delta,
        "term": EXPOSURE,
        "estimate": float(np.exp(est)),
        "ci_low": float(np.exp(est - crit * se)),
        "ci_high": float(np.exp(est + crit * se)),
        "p_value": p,
        "n_analysed": int(n),
        "n_input": len(ctx.rows),
        "n_imputed": int(ctx.missing.sum()) if analysis.startswith("multiple") else 0,
        "scale": "odds ratio",
        "fraction_missing_information": effect.fmi,
    }


def _complete_cases(ctx: _Rows) -> tuple[dict, ModelCard]:
    """The main analysis on those with a final score."""
    cc = ctx.rows[~ctx.missing]
    est, se, card = _log_effect(cc, "poor_outcome", ctx.predictors, "missing data: complete cases")
    return _row(ctx, "complete cases", 0.0, _Effect(est, se), len(cc)), card


def _last_observation(ctx: _Rows) -> tuple[dict, ModelCard]:
    """The last score carried forward (the baseline where there is none)."""
    rows = ctx.rows
    final = rows["last_score"].fillna(rows["baseline_score"])
    poor = _poor(rows["baseline_score"], final, ctx.outcomes)
    est, se, card = _log_effect(
        rows.assign(poor_locf=poor),
        "poor_locf",
        ctx.predictors,
        "missing data: last observation carried forward",
    )
    analysis = "last observation carried forward"
    return _row(ctx, analysis, 0.0, _Effect(est, se), card.n_analysed), card


def _multiple_imputation(
    ctx: _Rows,
    params: MissingDataParams,
    execute: Execute = in_order,
    alongside: dict[str, Callable[[], Any]] | None = None,
) -> tuple[list[dict], ModelCard, dict[str, Any]]:
    """Chained-equation imputation of the final score, then each delta of the grid added
    to the imputed scores (positive = worse), pooled by Rubin's rules; the pooled fits of
    each delta (and ``alongside``'s tasks, whose results are returned by label) through
    ``execute``."""
    rows, missing = ctx.rows, ctx.missing
    card = ModelCard(
        model=catalog.MULTIPLE_IMPUTATION,
        formula=f"poor_outcome ~ {' + '.join(ctx.predictors)}; final score imputed from "
        f"baseline, {EXPOSURE}, {', '.join(ctx.auxiliaries)}",
        method=f"MICE (statsmodels MICEData, PMM), {params.imputations} imputations (one "
        "cycle each: only the final score is incomplete); Rubin's rules; delta adjustment "
        "on imputed scores",
        n_input=len(rows),
        n_analysed=len(rows),
        n_groups=int(rows[CLUSTER].nunique()),
        notes=[f"{int(missing.sum())} of {len(rows)} final scores imputed"],
    )
    with captured_warnings(card):
        imputed = impute_final_scores(
            rows, ctx.auxiliaries, params, ctx.outcomes.primary_instrument, ctx.case_mix
        )
    deltas = sorted({0.0, *params.delta_grid})

    def pool_at(delta: float) -> Callable[[], tuple[Pooled, list[str]]]:
        return lambda: _pooled_at(ctx, imputed, delta)

    tasks: dict[str, Callable[[], Any]] = {
        f"delta {delta!r}": pool_at(float(delta)) for delta in deltas
    }
    done = execute((alongside or {}) | tasks)  # the counts of who is missing: the longest
    out = []
    for delta in deltas:
        pooled, warned = done[f"delta {delta!r}"]
        card.warnings += [w for w in warned if w not in card.warnings]
        analysis = "multiple imputation" if delta == 0 else "multiple imputation, delta-adjusted"
        fmi = pooled.fraction_missing_information
        effect = _Effect(pooled.estimate, pooled.se, pooled.df, pooled.p_value, fmi)
        out.append(_row(ctx, analysis, float(delta), effect, len(rows)))
    return out, card, {label: done[label] for label in alongside or {}}


def _pooled_at(ctx: _Rows, imputed: list[np.ndarray], delta: float) -> tuple[Pooled, list[str]]:
    """The effect in each completed dataset with ``delta`` added to the imputed scores,
    pooled, and the fits' warnings (each once, in order)."""
    spec = get_instrument(ctx.outcomes.primary_instrument)
    sign = 1.0 if spec.higher_is_worse else -1.0
    ests, variances, warned = [], [], []
    for completed in imputed:
        final = pd.Series(completed, index=ctx.rows.index)
        final[ctx.missing] = final[ctx.missing] + sign * delta
        final = final.clip(spec.minimum, spec.maximum)
        poor = _poor(ctx.rows["baseline_score"], final, ctx.outcomes)
        est, se, fit_card = _log_effect(
            ctx.rows.assign(poor_mi=poor), "poor_mi", ctx.predictors, "missing data: MI"
        )
        ests.append(est)
        variances.append(se**2)
        warned += [w for w in fit_card.warnings if w not in warned]
    return rubin(np.array(ests), np.array(variances)), warned


def tipping_point(table: pd.DataFrame) -> pd.DataFrame:
    """The δ nearest zero, on each side, at which the delta-adjusted MI interval no longer
    excludes 1 on the side of the complete-case estimate (or the estimate crosses 1)."""
    main = table[table["analysis"] == "complete cases"].iloc[0]
    harmful = main["estimate"] > 1
    mi = table[table["analysis"].str.startswith("multiple imputation")].sort_values("delta")

    def holds(r) -> bool:
        return r["ci_low"] > 1 if harmful else r["ci_high"] < 1

    holds_at_0 = bool(holds(mi[mi["delta"] == 0].iloc[0]))
    rows = []
    for side, candidates in (
        ("negative", mi[mi["delta"] < 0].sort_values("delta", ascending=False)),
        ("positive", mi[mi["delta"] > 0].sort_values("delta")),
    ):
        changed = [r for _, r in candidates.iterrows() if not holds(r)]
        # No conclusion at δ = 0 means there is nothing to tip.
        first = changed[0] if changed and holds_at_0 else None
        rows.append(
            {
                "direction": side,
                "conclusion_holds_at_delta_0": holds_at_0,
                "tipping_delta": None if first is None else float(first["delta"]),
                "estimate_at_tipping": None if first is None else float(first["estimate"]),
                "grid_limit": float(candidates["delta"].iloc[-1]) if len(candidates) else None,
            }
        )
    return pd.DataFrame(rows)
