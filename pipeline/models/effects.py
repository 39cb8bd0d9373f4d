"""Effect models for the final score (linear, ANCOVA), poor outcome (logistic) and dropout
(Cox), cluster-robust by therapist.

Why cluster-robust standard errors rather than GEE or random effects here: the question is a
population-averaged association (how much higher the odds are for a less engaged client),
clients are nested in therapists whose number is large, and the sandwich estimator stays
valid whatever the within-therapist correlation — without the convergence traps of a
logistic GLMM in statsmodels. With fewer than ``MIN_CLUSTERS`` therapists the usual
sandwich is too small and its normal reference anti-conservative, so the errors stay
clustered but small-sample corrected — CR2 (Bell–McCaffrey) for linear and logistic models,
the sandwich × G/(G − 1) for Cox — with a t(G − 1) reference, and the card says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import linalg, stats
from statsmodels.regression.linear_model import OLSResults, RegressionResultsWrapper
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from pipeline.models.cox import ClusteredPHReg, proportional_hazards_test
from pipeline.models.small_clusters import cr2_covariance
from pipeline.models.tidy import (
    TIDY_COLUMNS,
    Estimates,
    ModelCard,
    ModelError,
    captured_warnings,
    design_rank,
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
    small-sample corrected with a t(G − 1) reference; ``n_input`` is the model's
    population before any earlier row selection (None: the rows passed in)."""

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
            if sd > 0:
                out.attrs.setdefault("sd_units", {})[c] = float(sd)
    return out


def most_common_first(values: pd.Series) -> pd.Series:
    """A categorical predictor as a categorical whose first level (the reference) is its
    most common one (ties by label), the others in label order: a new label that happens
    to sort first cannot silently become the comparison."""
    codes, uniques = pd.factorize(values)  # missing values: -1
    if len(uniques) == 0:
        return values
    # Levels are labels: values equal as text (1 and "1") are one level.
    label_of, labels = pd.factorize(pd.Index([str(u) for u in uniques]))
    present = label_of[codes[codes >= 0]]
    counts = np.bincount(present, minlength=len(labels))
    names = [str(label) for label in labels]
    top = min(n for n, c in zip(names, counts, strict=True) if c == counts.max())
    levels = [top, *sorted(set(names) - {top})]
    position = np.array([levels.index(n) for n in names])
    level_codes = np.full(len(values), -1, dtype=np.intp)
    level_codes[codes >= 0] = position[present]
    return pd.Series(
        pd.Categorical.from_codes(level_codes, categories=pd.Index(levels)),
        index=values.index,
        name=values.name,
    )


def reference_levels(data: pd.DataFrame, predictors: list[str]) -> dict[str, str]:
    """The level each categorical predictor's other levels are compared with: the first
    level present (the categorical's own order, else label order; case mix is put most
    common first by :func:`most_common_first`)."""
    out = {}
    for c in dict.fromkeys(predictors):
        if c not in data or pd.api.types.is_numeric_dtype(data[c]):
            continue
        present = data[c].dropna()
        if isinstance(present.dtype, pd.CategoricalDtype):
            levels = [str(v) for v in present.cat.remove_unused_categories().cat.categories]
        else:
            levels = sorted(present.astype(str).unique())
        if levels:
            out[c] = levels[0]
    return out


def _design(data: pd.DataFrame, predictors: list[str]) -> pd.DataFrame:
    """Dummy columns for the categorical predictors, each level against the first present
    (:func:`reference_levels`)."""
    x = data[predictors].copy()
    for c in predictors:
        if isinstance(x[c].dtype, pd.CategoricalDtype):
            x[c] = x[c].cat.remove_unused_categories()
    return pd.get_dummies(x, drop_first=True, dtype=float)


@dataclass(frozen=True)
class Clusters:
    """Cluster codes for robust errors and whether they are few (below ``min_clusters``:
    small-sample corrected errors, t(G − 1) reference)."""

    codes: np.ndarray
    few: bool

    @property
    def df(self) -> float | None:
        return float(self.codes.max()) if self.few else None  # G − 1


def _clusters(
    card: ModelCard, data: pd.DataFrame, cluster: str | None, min_clusters: int
) -> Clusters | None:
    """Cluster codes for robust errors (flagged ``few`` below ``min_clusters``), or None
    (said on the card) when there is no cluster variable or a single cluster."""
    if cluster is None:
        card.notes.append("no cluster variable")
        return None
    codes, uniques = pd.factorize(data[cluster])
    n = len(uniques)
    card.n_groups = n
    if n < 2:
        card.notes.append(f"only {n} cluster: errors cannot be clustered")
        return None
    few = n < min_clusters
    if few:
        card.notes.append(
            f"only {n} clusters (< {min_clusters}): small-sample corrected cluster-robust "
            f"errors with a t reference on {n - 1} df"
        )
    return Clusters(codes, few)


@dataclass(frozen=True)
class _Errors:
    """Errors replacing statsmodels' own: covariance, SE, p-value, t df."""

    cov: np.ndarray
    se: np.ndarray
    p: np.ndarray
    df: float


def _small_sample_errors(params: np.ndarray, cov: np.ndarray, df: float) -> _Errors:
    se = np.sqrt(np.diag(cov))
    p = 2 * stats.t.sf(np.abs(params / se), df)
    return _Errors(cov, se, p, df)


def _ratio_fit(
    terms: pd.Index,
    result: Any,
    card: ModelCard,
    converged: bool,
    scale: str,
    errors: _Errors | None = None,
) -> EffectFit:
    """Record convergence and likelihood on the card; keep the parameters and their
    covariance by term (``errors``: small-sample ones replacing the result's); tidy rows
    on the ratio scale."""
    card.converged = converged
    card.status = "fitted" if converged else "not converged"
    card.log_likelihood = float(result.llf)
    params = pd.Series(np.asarray(result.params, float), index=terms)
    if errors is None:
        errors = _Errors(
            np.asarray(result.cov_params(), float),
            np.asarray(result.bse, float),
            np.asarray(result.pvalues, float),
            np.nan,
        )
    cov = pd.DataFrame(errors.cov, index=terms, columns=terms)
    df = None if np.isnan(errors.df) else errors.df
    rows = tidy(card, Estimates(terms, params, errors.se, errors.p, df), scale, np.exp)
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
) -> tuple[ModelCard, pd.DataFrame, pd.Series, Clusters | None]:
    """What a regression fitter shares: a new card, the design of the complete rows (with
    a constant), the outcome, and the clusters — None (HC1 errors, said on the card) when
    there is no cluster variable or a single cluster."""
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
    return card, x, y, groups


def _cov_type(groups: Clusters | None) -> tuple[str, dict]:
    """statsmodels' covariance for the fit: HC1 without clusters, model-based when CR2
    replaces it afterwards, otherwise clustered."""
    if groups is None:
        return "HC1", {}
    return ("nonrobust", {}) if groups.few else ("cluster", {"groups": groups.codes})


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
    card, x, y, groups = _regression(
        data, outcome, predictors, cluster, model, options, "logistic regression (GLM binomial)"
    )
    cov = _cov_type(groups)
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
            # hasconst: the design has its constant (``_regression``), so statsmodels
            # need not look for one column by column (seconds per model at scale).
            glm = sm.GLM(y, x, family=sm.families.Binomial(), hasconst=True)
            result = glm.fit(method="newton", max_start_irls=0, cov_type=cov[0], cov_kwds=cov[1])
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
    errors = None
    if groups is not None and groups.few and groups.df is not None:
        mu = np.asarray(result.fittedvalues, float)
        cr2 = cr2_covariance(x.to_numpy(float), y.to_numpy(float) - mu, groups.codes, mu * (1 - mu))
        errors = _small_sample_errors(np.asarray(result.params, float), cr2, groups.df)
    return _ratio_fit(x.columns, result, card, converged, "odds ratio", errors)


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


def _least_squares(model: Any, rank: int, cov: tuple[str, dict]) -> Any:
    """statsmodels' OLS results for a full-rank ``model``, the coefficients from a QR
    decomposition of the design with the outcome as its last column (R's ``lm`` solves by
    QR too): ``OLS.fit`` takes a pseudo-inverse of every row by SVD (its ``qr`` method as
    well, for covariances this module never asks for), several times the work — tens of
    seconds per model at national scale. The covariances (cluster, HC1, model-based) are
    statsmodels' own, from these coefficients and ``(X'X)⁻¹ = R⁻¹R⁻ᵀ``; the reference
    distribution is the normal, as for the interval (tidy), so p and CI tell the same
    story."""
    x = model.wexog
    k = x.shape[1]
    (r,) = linalg.qr(np.column_stack([x, model.wendog]), mode="r")
    beta = linalg.solve_triangular(r[:k, :k], r[:k, k])
    r_inv = linalg.solve_triangular(r[:k, :k], np.eye(k))
    model.rank = rank
    model.normalized_cov_params = r_inv @ r_inv.T
    if cov[0].startswith("HC"):  # statsmodels' HC sandwich is built from (X'X)⁻¹X'
        model.pinv_wexog = model.normalized_cov_params @ x.T
    results = OLSResults(
        model,
        beta,
        normalized_cov_params=model.normalized_cov_params,
        cov_type=cov[0],
        cov_kwds=cov[1],
        use_t=False,
    )
    return RegressionResultsWrapper(results)


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
    intervals (CR2 with a t(G − 1) reference below ``options.min_clusters`` clusters, said
    on the card). Estimates
    are differences in the outcome's own units per unit (per SD) of each predictor."""
    card, x, y, groups = _regression(
        data, outcome, predictors, cluster, model, options, "linear regression (OLS)"
    )
    cov = _cov_type(groups)
    card.level_counts = level_sizes(x)
    rank = design_rank(x.to_numpy(float))
    if rank < x.shape[1]:
        raise ModelError(_collinear(model, ValueError(f"design rank {rank} < {x.shape[1]}")))
    with captured_warnings(card):
        try:
            result = _least_squares(sm.OLS(y, x, hasconst=True), rank, cov)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(_collinear(model, exc)) from None
    if not np.all(np.isfinite(result.bse)):
        raise ModelError(_collinear(model, ValueError("standard errors are not finite")))
    card.optimizer = "least squares (QR decomposition)"
    card.converged = True
    card.status = "fitted"
    card.log_likelihood = float(result.llf)
    params = pd.Series(np.asarray(result.params, float), index=x.columns)
    cov_matrix = np.asarray(result.cov_params(), float)
    estimates = Estimates(x.columns, params, result.bse, result.pvalues)
    if groups is not None and groups.few and groups.df is not None:
        resid = y.to_numpy(float) - np.asarray(result.fittedvalues, float)
        cov_matrix = cr2_covariance(x.to_numpy(float), resid, groups.codes)
        e = _small_sample_errors(params.to_numpy(), cov_matrix, groups.df)
        estimates = Estimates(x.columns, params, e.se, e.p, e.df)
    covariance = pd.DataFrame(cov_matrix, index=x.columns, columns=x.columns)
    rows = tidy(card, estimates, "difference in points")
    return EffectFit(rows, card, params, covariance)


def design_terms(
    data: pd.DataFrame, predictors: list[str], design: pd.DataFrame
) -> dict[str, list[int]]:
    """Which design columns belong to each predictor: a numeric predictor is its own
    column, a categorical one all its dummies (one term, as many df as dummies)."""
    columns = list(design.columns)
    terms: dict[str, list[int]] = {}
    for p in predictors:
        if p in columns and pd.api.types.is_numeric_dtype(data[p]):
            terms[p] = [columns.index(p)]
        else:
            terms[p] = [i for i, c in enumerate(columns) if c.startswith(f"{p}_")]
    return {p: cols for p, cols in terms.items() if cols}


def proportional_hazards_check(
    model: ClusteredPHReg, params: np.ndarray, terms: dict[str, list[int]], card: ModelCard
) -> None:
    """The Grambsch–Therneau test (``cox.zph``: scaled Schoenfeld residuals against
    1 − KM time) per term and global, stored on the card (``ph_test``) and said in its
    notes; a term or global p below .05 means the hazard ratio changes over follow-up and
    a single ratio summarises it poorly."""
    with np.errstate(all="ignore"):
        try:
            table = proportional_hazards_test(model, params, terms)
        except np.linalg.LinAlgError:
            card.notes.append("PH check: not computable (singular information)")
            return
    rows = [
        (str(term), float(chisq), int(df), float(p))
        for term, chisq, df, p in zip(
            table["term"], table["chisq"], table["df"], table["p"], strict=True
        )
    ]
    card.ph_test = [{"term": t, "chisq": c, "df": d, "p": p} for t, c, d, p in rows]
    for term, chisq, df, p in rows:
        label = "global" if term == "GLOBAL" else f"`{term}`"
        flag = " — the hazard ratio may change over time" if p < 0.05 else ""
        card.notes.append(
            f"PH check {label}: Grambsch–Therneau chi-square {chisq:.2f} on {df} df, "
            f"p = {p:.3g}{flag}"
        )


def fit_cox(
    data: pd.DataFrame,
    time: str,
    event: str,
    predictors: list[str],
    cluster: str | None,
    model: str = "dropout",
    options: FitOptions = DEFAULT_OPTIONS,
    entry: str | None = None,
) -> EffectFit:
    """Cox proportional hazards (Efron ties); hazard ratios with cluster-robust intervals.
    ``options`` as for ``fit_logistic``. ``entry``: a delayed-entry column (at risk only
    after it, R's ``Surv(entry, time, event)``), e.g. for period-specific hazard ratios."""
    span = f"{entry}, {time}" if entry else time
    card = new_card(
        data,
        model,
        f"Surv({span}, {event}) ~ {' + '.join(predictors)}",
        "Cox PH (statsmodels PHReg, ties='efron'), robust errors",
    )
    analysed = prepare(
        data,
        card,
        [time, event, *predictors] + ([cluster] if cluster else []) + ([entry] if entry else []),
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
                analysed[time].astype(float),
                x,
                status=analysed[event].astype(float),
                entry=None if entry is None else analysed[entry].astype(float),
                ties="efron",
            ).fit(groups=None if groups is None else groups.codes)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(_collinear(model, exc)) from None
    _check_separation(model, pd.Series(np.asarray(result.params), index=x.columns), "event")
    card.optimizer = "Newton-Raphson (PHReg)"
    proportional_hazards_check(
        result.model, result.params, design_terms(analysed, predictors, x), card
    )
    converged = bool(np.all(np.isfinite(result.params))) and not any(
        "ConvergenceWarning" in w for w in card.warnings
    )
    errors = None
    if groups is not None and groups.few and groups.df is not None:
        # No CR2 for a partial likelihood: the sandwich with the G/(G − 1) factor (CR1,
        # as Stata's) and the t(G − 1) reference.
        g = groups.df + 1
        cr1 = np.asarray(result.cov_params(), float) * g / (g - 1)
        errors = _small_sample_errors(np.asarray(result.params, float), cr1, groups.df)
    return _ratio_fit(x.columns, result, card, converged, "hazard ratio", errors)
