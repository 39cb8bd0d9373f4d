"""Symptom trajectories: linear mixed models fitted by maximum likelihood.

``fit_trajectory`` fits a two-level model (random effects per group, e.g. an intercept and a
slope per client) with the exact profiled-likelihood fit of :mod:`pipeline.models.lmm`
(lme4's method; seconds at national scale), and a model with a further level (variance
components nested in the group, e.g. clients within therapists) with statsmodels
``MixedLM``, the one Python fit that can. Either way with the guards the design asks for:
explicit missing-row handling (analysed vs input N), every warning kept in the model card,
convergence recorded, random-effect variances at the boundary flagged and the fixed effects
cross-checked against a random-intercept-only fit, and a clear error instead of a traceback
when the data cannot support the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.formula.api as smf
from scipy import stats
from scipy.linalg import block_diag

from pipeline.models.lmm import fit_lmm
from pipeline.models.tidy import (
    Estimates,
    ModelCard,
    ModelError,
    captured_warnings,
    complete_rows,
    design_rank,
    tidy,
)

BOUNDARY_SHARE = 0.01  # a random-effect SD under 1% of the residual SD is at the boundary
EXACT_METHOD = "linear mixed model, maximum likelihood (profiled deviance, as lme4)"
NESTED_METHOD = "statsmodels MixedLM, maximum likelihood"


@dataclass
class TrajectoryFit:
    coefficients: pd.DataFrame
    """Tidy fixed effects (model, term, estimate, ci_low, ci_high, p_value, n, scale)."""
    variance: pd.DataFrame
    """Random-effect and residual standard deviations, and correlations of random effects."""
    card: ModelCard


def _variables(formula: str) -> list[str]:
    rhs = formula.split("~", 1)
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", " ".join(rhs))
    return [n for n in dict.fromkeys(names) if n not in {"C", "np", "log"}]


@dataclass(frozen=True)
class TrajectorySpec:
    """A mixed model: fixed effects ``formula``, random effects ``re_formula`` (None: an
    intercept) per ``group``, and variance components ``vc_formula`` nested in it."""

    formula: str
    group: str
    re_formula: str | None
    model: str
    vc_formula: dict[str, str] | None


def _analysed_rows(data: pd.DataFrame, spec: TrajectorySpec, card: ModelCard) -> pd.DataFrame:
    """The complete rows on every variable of the model, with at least two groups."""
    names = _variables(spec.formula) + [
        v for f in (spec.vc_formula or {}).values() for v in _variables("~" + f)
    ]
    names = [n for n in dict.fromkeys(names) if n != spec.group]
    columns = [c for c in names if c in data] + [spec.group]
    missing = [c for c in names if c not in data]
    if missing:
        raise ModelError(f"{spec.model}: column(s) not in the data: {', '.join(missing)}")
    analysed = complete_rows(data, columns, card, must_vary=columns[:-1])
    card.n_groups = int(analysed[spec.group].nunique())
    if card.n_groups < 2:
        raise ModelError(
            f"{spec.model}: all rows belong to one {spec.group}; a random effect per "
            f"{spec.group} needs at least two"
        )
    return analysed


@dataclass(frozen=True)
class MixedResult:
    """A fitted mixed model, whichever fit made it."""

    fe_params: pd.Series
    cov_fe: np.ndarray
    """(X′V⁻¹X)⁻¹ at the ML variance estimates."""
    re_labels: list[str]
    """The group's random effects (``intercept``, then slopes by column name)."""
    cov_re: np.ndarray
    vc_names: list[str]
    vcomp: np.ndarray
    """Variances of the components nested in the group (none for a two-level model)."""
    scale: float
    """Residual variance."""
    at_boundary: bool
    """The fit itself reports a random-effect variance at zero."""


def _record_fit(card: ModelCard, converged: bool, optimizer: str, llf: float) -> None:
    card.converged = converged
    card.status = "fitted" if converged else "not converged"
    card.optimizer = optimizer
    card.log_likelihood = llf
    if not converged:
        card.notes.append("did not converge: estimates are reported but must not be used")


def _fit_exact(analysed: pd.DataFrame, spec: TrajectorySpec, card: ModelCard) -> MixedResult:
    """Two levels: :func:`pipeline.models.lmm.fit_lmm` on the formula's design matrices."""
    y, x = patsy.dmatrices(spec.formula, analysed, return_type="dataframe", NA_action="raise")
    z = patsy.dmatrix(spec.re_formula or "1", analysed, return_type="dataframe")
    if design_rank(x.to_numpy()) < x.shape[1]:
        raise ModelError(
            f"{spec.model}: the model could not be fitted (the fixed-effect design is "
            "singular); check for collinear or constant predictors"
        )
    codes = pd.factorize(analysed[spec.group])[0]
    fit = fit_lmm(y.to_numpy().ravel(), x.to_numpy(), z.to_numpy(), codes)
    _record_fit(card, fit.converged, "L-BFGS-B on θ, exact gradient", fit.log_likelihood)
    if fit.at_boundary:
        card.warnings.append("a random-effect variance is on the boundary (zero) at the optimum")
    labels = ["intercept" if c == "Intercept" else str(c) for c in z.columns]
    return MixedResult(
        fe_params=pd.Series(fit.beta, index=x.columns),
        cov_fe=fit.cov_beta,
        re_labels=labels,
        cov_re=fit.cov_re,
        vc_names=[],
        vcomp=np.empty(0),
        scale=fit.sigma2,
        at_boundary=fit.at_boundary,
    )


def _fit_nested(analysed: pd.DataFrame, spec: TrajectorySpec, card: ModelCard) -> MixedResult:
    """A further level: statsmodels MixedLM (lbfgs), warnings on the card."""
    with captured_warnings(card):
        try:
            result = smf.mixedlm(
                spec.formula,
                analysed,
                groups=analysed[spec.group],
                re_formula=spec.re_formula,
                vc_formula=spec.vc_formula,
            ).fit(reml=False, method=["lbfgs"])
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(
                f"{spec.model}: the model could not be fitted ({exc}); check for "
                "collinear or constant predictors"
            ) from None
    _record_fit(card, bool(result.converged), "lbfgs", float(result.llf))
    return MixedResult(
        fe_params=result.fe_params,
        cov_fe=_fixed_covariance(result),
        re_labels=["intercept" if n == "Group" else str(n) for n in result.cov_re.index],
        cov_re=np.asarray(result.cov_re, dtype=float),
        # statsmodels orders variance components by name: take its order, not the dict's.
        vc_names=list(result.model.exog_vc.names),
        vcomp=np.asarray(result.vcomp, dtype=float),
        scale=float(result.scale),
        at_boundary=any("boundary" in w for w in card.warnings),
    )


def gls_covariance(
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]], scale: float
) -> np.ndarray:
    """Covariance of the fixed effects, (Σ X′V⁻¹X)⁻¹, at given variance parameters — what
    lme4's ``vcov()`` reports (statsmodels' ``bse_fe`` inverts the observed Hessian of all
    parameters instead, a little larger in finite samples).

    ``groups`` holds, per independent group, (X, W, D): its fixed-effect rows, the design of
    every random column of the group (nested components included) and their covariance D
    (may be singular at a boundary), so that V = σ²I + W D Wᵀ with σ² = ``scale``. By the
    push-through identity V⁻¹ = σ⁻²[I − W D (σ²I + WᵀW D)⁻¹ Wᵀ], only a q×q system is
    solved per group, never the n×n one.
    """
    k = groups[0][0].shape[1]
    info = np.zeros((k, k))
    for x, w, d in groups:
        wx = w.T @ x
        inner = np.linalg.solve(scale * np.eye(w.shape[1]) + (w.T @ w) @ d, wx)
        info += (x.T @ x - wx.T @ (d @ inner)) / scale
    return np.linalg.inv(info)


def _fixed_covariance(result: Any) -> np.ndarray:
    """``gls_covariance`` at a statsmodels MixedLM fit's estimates: the group's own random
    effects (``cov_re``) and each variance component (``vcomp``: one independent column per
    level, e.g. per client within a therapist)."""
    model = result.model
    cov_re = np.asarray(result.cov_re, dtype=float)
    vcomp = np.asarray(result.vcomp, dtype=float)
    groups = []
    for i in range(len(model.group_labels)):
        blocks = [np.asarray(model.exog_re_li[i], dtype=float)]
        variances = [cov_re]
        for j, v in enumerate(vcomp):
            mat = np.asarray(model.exog_vc.mats[j][i], dtype=float)
            blocks.append(mat)
            variances.append(v * np.eye(mat.shape[1]))
        cov = block_diag(*variances)
        groups.append((np.asarray(model.exog_li[i], dtype=float), np.hstack(blocks), cov))
    return gls_covariance(groups, float(result.scale))


def _random_effects(result: MixedResult, spec: TrajectorySpec) -> tuple[list[str], np.ndarray]:
    """Names of every random component and their SDs."""
    names = [f"{spec.group}: {n}" for n in result.re_labels] + result.vc_names
    variances = np.concatenate([np.diag(result.cov_re), result.vcomp])
    return names, np.sqrt(np.clip(variances, 0, None))


def _variance_table(result: MixedResult, spec: TrajectorySpec) -> pd.DataFrame:
    """Random-effect and residual SDs, and correlations between a group's random effects."""
    names, re_sd = _random_effects(result, spec)
    variance = pd.DataFrame(
        {
            "model": spec.model,
            "component": [*names, "residual"],
            "sd": [*re_sd, float(np.sqrt(result.scale))],
            "correlation": np.nan,
        }
    )
    cov, labels = result.cov_re, result.re_labels
    for i in range(len(labels)):  # correlations between a group's random effects
        for j in range(i):
            denom = np.sqrt(cov[i, i] * cov[j, j])
            variance.loc[len(variance)] = {
                "model": spec.model,
                "component": f"{spec.group}: corr({labels[j]}, {labels[i]})",
                "sd": np.nan,
                "correlation": cov[i, j] / denom if denom > 0 else np.nan,
            }
    return variance


def _check_boundary(
    data: pd.DataFrame, spec: TrajectorySpec, result: MixedResult, fit: TrajectoryFit
) -> None:
    """At the boundary: the fit says so, or an SD is negligible next to the residual SD.
    Noted on the card; with random slopes, the fixed effects are cross-checked against a
    random-intercept-only fit."""
    card = fit.card
    names, re_sd = _random_effects(result, spec)
    small = [
        n for n, sd in zip(names, re_sd, strict=True) if sd < BOUNDARY_SHARE * np.sqrt(result.scale)
    ]
    at_boundary = small or ([names[int(np.argmin(re_sd))]] if result.at_boundary else [])
    if not at_boundary:
        return
    card.notes.append(f"random-effect variance at the boundary (near zero): {at_boundary}")
    if spec.re_formula is not None and not spec.vc_formula:  # cross-check without the slope(s)
        simpler = fit_trajectory(
            data, spec.formula, spec.group, None, f"{spec.model} (intercept only)"
        )
        diff = (
            (
                fit.coefficients.set_index("term")["estimate"]
                - simpler.coefficients.set_index("term")["estimate"]
            )
            .abs()
            .max()
        )
        card.notes.append(f"max change in fixed effects without the boundary term: {diff:.4g}")


def fit_trajectory(
    data: pd.DataFrame,
    formula: str,
    group: str,
    re_formula: str | None = None,
    model: str = "trajectory",
    vc_formula: dict[str, str] | None = None,
) -> TrajectoryFit:
    """Fit ``formula`` with random effects ``re_formula`` (default: intercept) per ``group``,
    and optional variance components ``vc_formula`` nested in it (a further level, e.g.
    clients within therapists: ``{"client": "0 + C(episode_id)"}``).

    Maximum likelihood (not REML), so that fixed effects can be compared across models and
    match published ML fits. Two levels are fitted exactly and fast
    (:mod:`pipeline.models.lmm`); a nested level with statsmodels MixedLM. Never mutates
    ``data``.
    """
    spec = TrajectorySpec(formula, group, re_formula, model, vc_formula)
    nested = "".join(f" + {k}: {v}" for k, v in (vc_formula or {}).items())
    card = ModelCard(
        model=model,
        formula=f"{formula} | {re_formula or '1'} by {group}{nested}",
        method=NESTED_METHOD if vc_formula else EXACT_METHOD,
        n_input=len(data),
        n_analysed=0,
    )
    analysed = _analysed_rows(data, spec, card)
    result = (_fit_nested if vc_formula else _fit_exact)(analysed, spec, card)
    fe = result.fe_params.index
    bse = pd.Series(np.sqrt(np.diag(result.cov_fe)), index=fe)
    p_values = pd.Series(2 * stats.norm.sf(np.abs(result.fe_params / bse)), index=fe)
    coefficients = tidy(card, Estimates(fe, result.fe_params, bse, p_values))
    card.notes.append(
        "fixed-effect errors (X′V⁻¹X)⁻¹ at the ML variance estimates, as lme4 reports them"
    )
    fit = TrajectoryFit(coefficients, _variance_table(result, spec), card)
    _check_boundary(data, spec, result, fit)
    return fit


def person_mean_centre(data: pd.DataFrame, column: str, group: str) -> pd.DataFrame:
    """Split a time-varying predictor into ``<column>_between`` (the person's mean, centred on
    the grand mean of person means) and ``<column>_within`` (the occasion's deviation from
    the person's own mean), so that "people who engage more" and "occasions when a person
    engages more" are separate estimates. Returns a new frame."""
    person = data.groupby(group)[column].transform("mean")
    grand = data.groupby(group)[column].mean().mean()
    return data.assign(
        **{f"{column}_between": person - grand, f"{column}_within": data[column] - person}
    )
