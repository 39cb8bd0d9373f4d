"""Effect models for the final score (linear, ANCOVA), poor outcome (logistic) and dropout
(Cox), cluster-robust by therapist.

Why cluster-robust standard errors rather than GEE or random effects here: the question is a
population-averaged association (how much higher the odds are for a less engaged client),
clients are nested in therapists whose number is large, and the sandwich estimator stays
valid whatever the within-therapist correlation — without the convergence traps of a
logistic GLMM in statsmodels. With fewer than ``MIN_CLUSTERS`` therapists the clustered
errors are unreliable, so heteroscedasticity-robust (HC1) errors are used and the card says
so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from pipeline.models.tidy import (
    TIDY_COLUMNS,
    Estimates,
    ModelCard,
    ModelError,
    captured_warnings,
    level_outcomes,
    new_card,
    prepare,
    tidy,
)

MIN_CLUSTERS = 20
MAX_ABS_LOG_RATIO = 10.0  # |log OR| or |log HR| above this: (quasi-)separation, not an effect


@dataclass(frozen=True)
class FitOptions:
    """How a fitter treats its population: below ``min_clusters`` clusters the errors are
    not clustered; ``n_input`` is the model's population before any earlier row selection
    (None: the rows passed in)."""

    min_clusters: int = MIN_CLUSTERS
    n_input: int | None = None


@dataclass
class EffectFit:
    """A fitted (or failed) effect model, in the spirit of statsmodels' results: the
    parameters on the model's own scale (log-odds or log-hazard, named by term, with the
    logistic intercept as ``const``), their covariance (cluster-robust, HC1 or model-based,
    as the card says), the tidy table on the ratio scale and the model card. A model that
    could not be fitted has empty ``params`` and ``cov``."""

    coefficients: pd.DataFrame
    """Tidy rows on the reported (ratio) scale: model, term, estimate, ci_low, ci_high …"""
    card: ModelCard
    params: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    """Estimates on the linear-predictor scale (log odds / log hazard), indexed by term."""
    cov: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Covariance matrix of ``params`` (terms × terms), as used for the intervals."""

    @property
    def se(self) -> pd.Series:
        """Standard errors of ``params``: the square roots of the diagonal of ``cov``."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy(float))), index=self.cov.index)

    @property
    def fitted(self) -> bool:
        """Whether there are estimates (a model that failed has none)."""
        return not self.params.empty

    @classmethod
    def failed(cls, card: ModelCard) -> EffectFit:
        """The result of a model that could not be fitted: no estimates, the card says why."""
        return cls(pd.DataFrame(columns=TIDY_COLUMNS), card)


DEFAULT_OPTIONS = FitOptions()


def standardise(
    data: pd.DataFrame, columns: list[str], reference: pd.Series | None = None
) -> pd.DataFrame:
    """Continuous predictors per SD (so ratios are per SD); 0/1 flags are left as they are.
    Mean and SD come from the ``reference`` rows (default: all rows)."""
    out = data.copy()
    for c in columns:
        values = out[c].astype(float)
        if set(values.dropna().unique()) <= {0.0, 1.0}:
            out[c] = values
        else:
            ref = values if reference is None else values[reference]
            sd = ref.std()
            out[c] = (values - ref.mean()) / sd if sd > 0 else values
    return out


def _design(data: pd.DataFrame, predictors: list[str]) -> pd.DataFrame:
    return pd.get_dummies(data[predictors], drop_first=True, dtype=float)


def _clusters(
    card: ModelCard, data: pd.DataFrame, cluster: str | None, min_clusters: int
) -> np.ndarray | None:
    """Cluster codes for robust errors, or None (with the reason noted on the card) when
    there is no cluster variable or too few clusters for the sandwich to be trusted."""
    if cluster is None:
        card.notes.append("no cluster variable")
        return None
    n = int(data[cluster].nunique())
    card.n_groups = n
    if n < min_clusters:
        card.notes.append(f"only {n} clusters (< {min_clusters})")
        return None
    return pd.factorize(data[cluster])[0]


def _ratio_fit(
    terms: pd.Index, result: Any, card: ModelCard, converged: bool, scale: str
) -> EffectFit:
    """Record convergence and likelihood on the card; keep the parameters and their
    covariance by term; tidy rows on the ratio scale."""
    card.converged = converged
    card.status = "fitted" if converged else "not converged"
    card.log_likelihood = float(result.llf)
    params = pd.Series(np.asarray(result.params, float), index=terms)
    cov = pd.DataFrame(np.asarray(result.cov_params(), float), index=terms, columns=terms)
    rows = tidy(card, Estimates(terms, params, result.bse, result.pvalues), scale, np.exp)
    return EffectFit(rows, card, params, cov)


def _collinear(model: str, exc: Exception) -> str:
    return (
        f"{model}: the model could not be fitted ({exc}); two predictors are probably "
        "collinear (or one is listed twice) — drop one"
    )


def _check_separation(model: str, log_ratios: pd.Series, kind: str) -> None:
    """A ratio beyond e^±10 is (quasi-)separation or a monotone likelihood: no finite
    estimate exists, whatever the optimiser reports."""
    extreme = log_ratios[np.abs(log_ratios) > MAX_ABS_LOG_RATIO]
    if len(extreme):
        raise ModelError(
            f"{model}: {', '.join(map(str, extreme.index))} (almost) perfectly separates the "
            f"{kind}: the ratio is not estimable (|log ratio| > {MAX_ABS_LOG_RATIO:g}) — drop "
            "or combine it"
        )


def _regression(
    data: pd.DataFrame,
    outcome: str,
    predictors: list[str],
    cluster: str | None,
    model: str,
    options: FitOptions,
    method: str,
) -> tuple[ModelCard, pd.DataFrame, pd.Series, tuple[str, dict]]:
    """What a regression fitter shares: a new card, the design of the complete rows (with
    a constant), the outcome, and the covariance type for statsmodels — clustered, or HC1
    (said on the card) when there are too few clusters."""
    card = new_card(
        data, model, f"{outcome} ~ {' + '.join(predictors)}", f"{method}, robust errors"
    )
    analysed = prepare(
        data,
        card,
        [outcome, *predictors] + ([cluster] if cluster else []),
        [outcome, *predictors],
        options.n_input,
    )
    x = sm.add_constant(_design(analysed, predictors), has_constant="add")
    y = analysed[outcome].astype(float)
    groups = _clusters(card, analysed, cluster, options.min_clusters)
    if groups is None:
        card.notes.append("heteroscedasticity-robust (HC1) errors instead of cluster-robust ones")
    cov = ("HC1", {}) if groups is None else ("cluster", {"groups": groups})
    return card, x, y, cov


def fit_logistic(
    data: pd.DataFrame,
    outcome: str,
    predictors: list[str],
    cluster: str | None,
    model: str = "poor outcome",
    options: FitOptions = DEFAULT_OPTIONS,
) -> EffectFit:
    """Logistic regression; odds ratios with 95% cluster-robust intervals. ``options``: the
    minimum number of clusters, and the model's population before any earlier row
    selection (its ``n_input``)."""
    card, x, y, cov = _regression(
        data, outcome, predictors, cluster, model, options, "logistic regression (GLM binomial)"
    )
    card.level_counts = level_outcomes(x, y)
    separated = (
        f"{model}: a predictor separates the outcome perfectly; odds ratios would be "
        "infinite — drop or combine it"
    )
    with captured_warnings(card):
        try:
            # Newton–Raphson on the k×k information matrix: the same maximum likelihood
            # as IRLS, without a least-squares solve over every row at each iteration
            # (minutes at national scale for the whole battery).
            result = sm.GLM(y, x, family=sm.families.Binomial()).fit(
                method="newton", max_start_irls=0, cov_type=cov[0], cov_kwds=cov[1]
            )
        except PerfectSeparationError:
            raise ModelError(separated) from None
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(_collinear(model, exc)) from None
    # Newton does not run IRLS's perfect-prediction check: complete separation shows as
    # non-finite estimates (or the warning, should statsmodels give it).
    if any("separation" in w.lower() for w in card.warnings) or not np.all(
        np.isfinite(result.params)
    ):
        raise ModelError(separated)
    _check_separation(model, result.params.drop("const"), "outcome")
    card.optimizer = "Newton-Raphson"
    if not np.all(np.isfinite(result.bse)):
        raise ModelError(f"{model}: standard errors are not finite (collinear predictors?)")
    converged = bool(result.mle_retvals.get("converged", False)) and not any(
        "ConvergenceWarning" in w for w in card.warnings
    )
    return _ratio_fit(x.columns, result, card, converged, "odds ratio")


def level_sizes(design: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """(rows at level 1, rows at level 0) of each 0/1 column of ``design``: what a
    continuous outcome's estimate for that term rests on (the counterpart of
    ``level_outcomes`` for a binary outcome)."""
    out = {}
    for c in design.columns:
        x = design[c].to_numpy(float)
        if c == "const" or not np.isin(x, (0.0, 1.0)).all():
            continue
        at = int((x == 1.0).sum())
        out[str(c)] = (at, len(x) - at)
    return out


def fit_linear(
    data: pd.DataFrame,
    outcome: str,
    predictors: list[str],
    cluster: str | None,
    model: str = "final score",
    options: FitOptions = DEFAULT_OPTIONS,
) -> EffectFit:
    """Linear regression (least squares) of a continuous outcome — with the baseline score
    among ``predictors`` this is the ANCOVA of the final score — with 95% cluster-robust
    intervals (HC1 below ``options.min_clusters`` clusters, said on the card). Estimates
    are differences in the outcome's own units per unit (per SD) of each predictor."""
    card, x, y, cov = _regression(
        data, outcome, predictors, cluster, model, options, "linear regression (OLS)"
    )
    card.level_counts = level_sizes(x)
    with captured_warnings(card):
        try:
            # Normal reference, as for the interval (tidy): p and CI tell the same story.
            result = sm.OLS(y, x).fit(cov_type=cov[0], cov_kwds=cov[1], use_t=False)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(_collinear(model, exc)) from None
    rank = int(np.linalg.matrix_rank(x.to_numpy(float)))
    if rank < x.shape[1] or not np.all(np.isfinite(result.bse)):
        raise ModelError(_collinear(model, ValueError(f"design rank {rank} < {x.shape[1]}")))
    card.optimizer = "least squares (QR)"
    card.converged = True
    card.status = "fitted"
    card.log_likelihood = float(result.llf)
    params = pd.Series(np.asarray(result.params, float), index=x.columns)
    cov_matrix = np.asarray(result.cov_params(), float)
    covariance = pd.DataFrame(cov_matrix, index=x.columns, columns=x.columns)
    estimates = Estimates(x.columns, params, result.bse, result.pvalues)
    rows = tidy(card, estimates, "difference in points")
    return EffectFit(rows, card, params, covariance)


def _at_risk_sums(k: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` failure times i, the sum of ``w`` over rows at risk at it (rows
    with ``k > i``, ``k`` being how many failure times a row is at risk at)."""
    return np.cumsum(np.bincount(k, w, minlength=n + 1)[::-1])[::-1][1:]


class ClusteredPHReg(PHReg):
    """statsmodels' ``PHReg`` with its score residuals and their per-cluster sums computed
    with cumulative sums instead of a Python loop over failure times that rebuilds the
    risk set each time (over an hour at national scale for the four dropout models).
    Same quantities, same formulas: the residual of subject j is
    ``sum over failure times i at which j is at risk of (x_j - xbar_i)(d_ij - e_j dH_i)``,
    with ``xbar_i`` the hazard-weighted covariate mean of the risk set and ``dH_i`` the
    Breslow increment, exactly as ``PHReg.score_residuals``; tested equal to it. Subjects
    never at risk have no residual (NaN, as in statsmodels) and add 0 to their cluster's
    score. Models with delayed entry use statsmodels' own code."""

    def score_residuals(self, params):
        surv = self.surv
        if any(np.any(e != 0) for e in surv.entry_s):
            return super().score_residuals(params)
        resid = np.full(self.exog.shape, np.nan)
        for stx in range(surv.nstrat):
            x, t = surv.exog_s[stx], surv.time_s[stx]
            failed = surv.status_s[stx] == 1
            uft = surv.ufailt[stx]
            lp = x @ params
            if surv.offset_s is not None:
                lp = lp + surv.offset_s[stx]
            e = np.exp(lp - lp.max())
            # Row j is at risk at the first k_j failure times (those <= its time).
            k = np.searchsorted(uft, t, "right")
            n = len(uft)
            s0 = _at_risk_sums(k, e, n)
            xbar = np.column_stack([_at_risk_sums(k, e * x[:, c], n) for c in range(x.shape[1])])
            xbar /= s0[:, None]
            where = np.searchsorted(uft, t[failed])
            dh = np.bincount(where, minlength=n) / s0
            c_dh = np.cumsum(dh)
            c_dhx = np.cumsum(dh[:, None] * xbar, axis=0)
            ok = k > 0
            r = np.full(x.shape, np.nan)
            kk = k[ok] - 1
            r[ok] = -e[ok, None] * (x[ok] * c_dh[kk, None] - c_dhx[kk])
            r[failed] += x[failed] - xbar[where]
            resid[surv.stratum_rows[stx]] = r
        return resid

    def robust_covariance(self, params):
        if self.groups is None:
            raise ValueError("`groups` must be specified to calculate the robust covariance")
        codes = pd.factorize(self.groups)[0]
        # A subject never at risk (censored before its stratum's first failure) adds nothing
        # to the score: 0, where statsmodels' NaN would make the whole covariance undefined.
        scores = np.nan_to_num(self.score_residuals(params), nan=0.0)
        sums = np.column_stack([np.bincount(codes, scores[:, c]) for c in range(scores.shape[1])])
        hess_inv = np.linalg.inv(self.hessian(params))
        return hess_inv @ (sums.T @ sums) @ hess_inv


def proportional_hazards_check(result, time, event, terms) -> list[str]:
    """Proportional-hazards diagnostic for the card: for each term, the correlation of its
    Schoenfeld residuals with log time among events (Grambsch–Therneau style, unscaled);
    a clear trend means the hazard ratio changes over follow-up."""
    with np.errstate(all="ignore"):
        residuals = np.asarray(result.schoenfeld_residuals)
    events = event == 1
    notes = []
    for j, term in enumerate(terms):
        r = residuals[events, j]
        t = np.log(np.maximum(time[events], 0.5))
        ok = np.isfinite(r)
        if ok.sum() < 10 or np.std(r[ok]) == 0:
            continue
        rho, p = stats.pearsonr(t[ok], r[ok])
        flag = " — the hazard ratio may change over time" if p < 0.01 else ""
        notes.append(
            f"PH check `{term}`: corr(Schoenfeld residual, log time) = {rho:.3f}, p = {p:.3g}{flag}"
        )
    return notes


def fit_cox(
    data: pd.DataFrame,
    time: str,
    event: str,
    predictors: list[str],
    cluster: str | None,
    model: str = "dropout",
    options: FitOptions = DEFAULT_OPTIONS,
) -> EffectFit:
    """Cox proportional hazards (Efron ties); hazard ratios with cluster-robust intervals.
    ``options`` as for ``fit_logistic``."""
    card = new_card(
        data,
        model,
        f"Surv({time}, {event}) ~ {' + '.join(predictors)}",
        "Cox PH (statsmodels PHReg, ties='efron'), robust errors",
    )
    analysed = prepare(
        data,
        card,
        [time, event, *predictors] + ([cluster] if cluster else []),
        predictors,
        options.n_input,
    )
    if analysed[event].astype(float).sum() == 0:
        raise ModelError(f"{model}: no events in the analysed rows")
    x = _design(analysed, predictors)
    card.level_counts = level_outcomes(x, analysed[event].astype(float))
    groups = _clusters(card, analysed, cluster, options.min_clusters)
    if groups is None:
        card.notes.append("model-based errors instead of cluster-robust ones")
    with captured_warnings(card):
        try:
            result = ClusteredPHReg(
                analysed[time].astype(float), x, status=analysed[event].astype(float), ties="efron"
            ).fit(groups=groups)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(_collinear(model, exc)) from None
    _check_separation(model, pd.Series(np.asarray(result.params), index=x.columns), "event")
    card.optimizer = "Newton-Raphson (PHReg)"
    card.notes += proportional_hazards_check(
        result, analysed[time].to_numpy(float), analysed[event].to_numpy(float), x.columns
    )
    converged = bool(np.all(np.isfinite(result.params))) and not any(
        "ConvergenceWarning" in w for w in card.warnings
    )
    return _ratio_fit(x.columns, result, card, converged, "hazard ratio")
