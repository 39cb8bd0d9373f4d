"""Tidy result tables and model cards shared by every model."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

TIDY_COLUMNS = [
    "model",
    "term",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "n_analysed",
    "n_input",
    "scale",
    "status",
    "level_min",
]


class ModelError(ValueError):
    """A model cannot be fitted to these data; the message says why, for a person."""


@dataclass
class ModelCard:
    """What a reader needs to trust (or distrust) a fitted model."""

    model: str
    formula: str
    method: str
    n_input: int
    n_analysed: int
    n_groups: int | None = None
    converged: bool | None = None
    optimizer: str | None = None
    log_likelihood: float | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "fitted"
    """``fitted``, ``not converged`` (estimates shown flagged, not to be used) or ``not fitted``
    (no estimates; ``notes`` says why)."""
    level_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """For each 0/1 term, the (events, non-events) among the analysed rows at level 1: a
    term resting on too few of either is withheld from shared output
    (:func:`pipeline.disclosure.sparse_terms`). Exact: not for sharing."""

    units: dict[str, float] = field(default_factory=dict)
    """Per-SD predictors: the SD (in the predictor's own units, among the analysed rows)
    that one unit of its estimate stands for."""
    reference_levels: dict[str, str] = field(default_factory=dict)
    """Categorical predictors: the level the others are compared with (the most common
    among the analysed rows; ties by label)."""
    events: int | None = None
    """Binary and event outcomes: the events the model rests on (Cox: events; logistic:
    the rarer of the two outcomes). Exact: rounded for sharing."""
    parameters: int | None = None
    """Estimated coefficients besides the intercept (the denominator of events per
    variable)."""

    ph_test: list[dict] = field(default_factory=list)
    """Cox models: the proportional-hazards test per term and ``GLOBAL`` (``term``,
    ``chisq``, ``df``, ``p``; :func:`pipeline.models.cox.proportional_hazards_test`)."""

    def as_dict(self) -> dict:
        """JSON-ready: a non-finite number (e.g. no likelihood) becomes null."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in self.__dict__.items()
        }


def failed_card(model: str, formula: str, method: str, n_input: int, reason: str) -> ModelCard:
    """The card of a model that could not be fitted: reported, with the reason, not dropped."""
    return ModelCard(
        model=model,
        formula=formula,
        method=method,
        n_input=n_input,
        n_analysed=0,
        notes=[reason],
        status="not fitted",
    )


@contextmanager
def captured_warnings(card: ModelCard) -> Iterator[None]:
    """Record every warning raised while fitting into the model card (none is lost)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in card.warnings:
            card.warnings.append(text)


RANK_TOLERANCE = 1e-6
"""A design column whose part independent of the others is under this share of the
largest singular value (columns scaled to unit length) counts as collinear."""


def design_rank(x: ArrayLike) -> int:
    """Numerical rank of a design matrix (rows × columns) from the eigenvalues of its
    cross-product with every column scaled to unit length: O(n·p²) in one matrix product,
    where ``np.linalg.matrix_rank`` takes a singular value decomposition of all n rows (tens
    of seconds per model at national scale). A column of zeros, or one equal to a
    combination of the others, lowers the rank; so does near-collinearity, a singular
    value under ``RANK_TOLERANCE`` of the largest (a variance inflation over 10¹²)."""
    x = np.asarray(x, float)
    if x.ndim != 2 or x.shape[1] == 0:
        return 0
    gram = x.T @ x
    norms = np.sqrt(np.diag(gram))
    used = norms > 0
    scaled = gram[np.ix_(used, used)] / np.outer(norms[used], norms[used])
    eigen = np.linalg.eigvalsh(scaled) if scaled.size else np.empty(0)
    return int((eigen > RANK_TOLERANCE**2 * eigen.max(initial=0.0)).sum())


def complete_rows(
    data: pd.DataFrame, columns: list[str], card: ModelCard, must_vary: list[str] | None = None
) -> pd.DataFrame:
    """Drop rows missing any model column, explicitly, and record analysed vs input N.
    Columns in ``must_vary`` (default: all) must take at least two values."""
    missing = [c for c in columns if c not in data]
    if missing:
        raise ModelError(f"{card.model}: column(s) not in the data: {', '.join(missing)}")
    analysed = data.dropna(subset=columns)
    card.n_input, card.n_analysed = len(data), len(analysed)
    if len(analysed) < len(data):
        card.notes.append(f"{len(data) - len(analysed)} row(s) with missing values dropped")
    if analysed.empty:
        raise ModelError(f"{card.model}: no row has all of {', '.join(columns)}")
    for column in columns if must_vary is None else must_vary:
        values = analysed[column]  # complete: a value other than the first is a second one
        if not values.ne(values.iloc[0]).any():
            raise ModelError(
                f"{card.model}: '{column}' takes a single value in the analysed "
                "rows, so its effect cannot be estimated; drop it from the model"
            )
    return analysed


def prepare(
    data: pd.DataFrame,
    card: ModelCard,
    columns: list[str],
    must_vary: list[str],
    population: int | None = None,
) -> pd.DataFrame:
    """The complete rows ``card``'s model will be fitted to (``card`` is a new card: its N
    are filled in). ``population`` (if the caller already selected rows) is the model's
    input N; the card notes the difference."""
    analysed = complete_rows(data, columns, card, must_vary=must_vary)
    if population is not None and population > len(data):
        card.notes.append(
            f"{population - len(data)} row(s) of the population lacked a value needed by the "
            "adjusted model of this block (dropped so both models use the same rows)"
        )
        card.n_input = population
    return analysed


def new_card(data: pd.DataFrame, model: str, formula: str, method: str) -> ModelCard:
    """A card for a model about to be fitted to ``data`` (nothing analysed yet)."""
    return ModelCard(model=model, formula=formula, method=method, n_input=len(data), n_analysed=0)


@dataclass(frozen=True)
class Estimates:
    """Point estimates, standard errors and p-values of a model's terms, on the model's
    own (linear-predictor) scale."""

    terms: pd.Index
    estimate: ArrayLike
    se: ArrayLike
    p_value: ArrayLike
    df: float | None = None
    """Degrees of freedom of a t reference (few clusters: G − 1); None: normal."""


def tidy(
    card: ModelCard,
    estimates: Estimates,
    scale: str = "identity",
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per term of ``card``'s model with a 95% Wald interval (normal, or t on
    ``estimates.df`` degrees of freedom); ``transform`` maps to the reported scale
    (``np.exp`` for odds and hazard ratios)."""
    estimate = np.asarray(estimates.estimate, float)
    se = np.asarray(estimates.se, float)
    q = 1.959964 if estimates.df is None else float(stats.t.ppf(0.975, estimates.df))
    low, high = estimate - q * se, estimate + q * se
    f = transform or (lambda x: x)
    return pd.DataFrame(
        {
            "model": card.model,
            "term": list(estimates.terms),
            "estimate": f(estimate),
            "ci_low": f(low),
            "ci_high": f(high),
            "p_value": np.asarray(estimates.p_value, float),
            "n_analysed": card.n_analysed,
            "n_input": card.n_input,
            "scale": scale,
            "status": card.status,
            "level_min": [
                float(min(card.level_counts[t])) if t in card.level_counts else np.nan
                for t in estimates.terms
            ],
        }
    )[TIDY_COLUMNS]


def level_outcomes(design: pd.DataFrame, outcome: pd.Series) -> dict[str, tuple[int, int]]:
    """(events, non-events) at level 1 of each 0/1 column of ``design`` (``outcome`` 0/1):
    what a term's estimate rests on."""
    y = outcome.to_numpy(float)
    out = {}
    for c in design.columns:
        x = design[c].to_numpy(float)
        if c == "const" or not np.isin(x, (0.0, 1.0)).all():
            continue
        at = x == 1.0
        events = int(y[at].sum())
        out[str(c)] = (events, int(at.sum()) - events)
    return out


@dataclass
class Results:
    """Tables by name (written as ``reports/tables/<stage>/<name>.csv``) and the model cards."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    cards: list[ModelCard] = field(default_factory=list)

    def extend(self, other: Results) -> Results:
        self.tables |= other.tables
        self.cards += other.cards
        return self


def card_slug(model: str) -> str:
    """File name of a model card: ``poor_outcome: index (adjusted)`` →
    ``poor-outcome-index-adjusted``."""
    return "-".join(re.findall(r"[a-z0-9+]+", model.lower())).replace("+", "plus")


def term_row(fit: Any, term: str) -> pd.Series:
    """One term's row of a fit's tidy table (estimate, ci_low, ci_high, p_value, n_analysed
    …), for any fit with ``coefficients`` and ``card`` (``fit_logistic``, ``fit_cox``,
    ``fit_trajectory``)."""
    table = fit.coefficients.set_index("term")
    if term not in table.index:
        raise ModelError(
            f"{term!r} is not a term of {fit.card.model!r} (terms: {', '.join(table.index)})"
        )
    return table.loc[term]
