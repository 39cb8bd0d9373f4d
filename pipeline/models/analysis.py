"""The outcome analyses of the `models` stage, as pure functions of the processed tables.

Each function takes the per-episode analysis frame (or the long score table), fits the models
of one question and returns tidy tables plus one model card per model. A model that cannot
be fitted (a block absent from this export, a constant column, a separated flag) yields a
card with status ``not fitted`` and the reason; the others still run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import CumIncidenceRight, SurvfuncRight

from pipeline import catalog
from pipeline.config import AnalysisParams, ModelsParams
from pipeline.keys import positions
from pipeline.models.descriptive import dose_response, kaplan_meier
from pipeline.models.effects import (
    EffectFit,
    FitOptions,
    fit_cox,
    fit_linear,
    fit_logistic,
    most_common_first,
    reference_levels,
    standardise,
)
from pipeline.models.tidy import (
    TIDY_COLUMNS,
    ModelCard,
    ModelError,
    Results,
    captured_warnings,
    failed_card,
)
from pipeline.models.trajectories import (
    EXACT_METHOD,
    NESTED_METHOD,
    TrajectoryFit,
    fit_trajectory,
    person_mean_centre,
)

CLUSTER = "cluster"
FLAGS_GROUP = "flags_group"
FLAGS_GROUPS = ("0", "1", "2+")
POOLED = "other (pooled)"


# --- the analysis frame -------------------------------------------------------------------


def cluster_key(episodes: pd.DataFrame, params: ModelsParams) -> pd.Series:
    """Cluster of each episode: its therapist; where that is missing, its site; where both
    are missing, the episode alone (a cluster of one adds no correlation)."""
    key = pd.Series(pd.NA, index=episodes.index, dtype="string")
    for column, tag in ((params.cluster, "c"), (params.fallback_cluster, "f")):
        if column in episodes:
            key = key.fillna(tag + ":" + episodes[column].astype("string"))
    return key.fillna("episode:" + episodes["episode_id"].astype("string"))


def cluster_note(key: pd.Series, params: ModelsParams) -> str:
    """What the cluster-robust errors cluster on, for the model cards: how many episodes
    have their therapist, fall back to the site, or stand alone."""
    tag = key.str.slice(0, 2)  # "c:", "f:" or "ep" (from "episode:"); no split of every key
    kinds = tag.map({"c:": "c", "f:": "f", "ep": "episode"}).value_counts()
    note = (
        f"clusters: {params.cluster} for {kinds.get('c', 0)} episode(s), "
        f"{params.fallback_cluster} for {kinds.get('f', 0)}, the episode alone for "
        f"{kinds.get('episode', 0)}"
    )
    if kinds.get("c", 0) == 0:
        note += f" (no '{params.cluster}' in this export: check models.cluster)"
    return note


def plain_levels(values: pd.Series) -> pd.Series:
    """A categorical column as plain labels (pooling adds a level; rows prepared for a
    model carry their reference coding, which is set again after pooling)."""
    return values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values


def pool_rare_levels(
    values: pd.Series, min_count: int, counted: pd.Series | None = None
) -> pd.Series:
    """Categories with fewer than ``min_count`` rows (among the ``counted`` rows, default
    all) become one pooled level (rare levels give unstable, nearly separated
    coefficients). Missing stays missing."""
    values = plain_levels(values)
    counts = (values if counted is None else values[counted]).value_counts()
    rare = counts.index[counts < min_count]
    return values.where(~values.isin(rare) | values.isna(), POOLED)


def pool_case_mix(
    frame: pd.DataFrame, params: ModelsParams, counted: pd.Series | None = None
) -> pd.DataFrame:
    """``frame`` with its case-mix levels that are rare among the ``counted`` rows (default:
    all) pooled (``pool_rare_levels``). A model's population is pooled again this way: a
    level common in the cohort can be rare, and separate the outcome, among the people an
    outcome is defined for (at caseness, in treatment at the landmark)."""
    return frame.assign(
        **{
            c: pool_rare_levels(frame[c], params.min_level_count, counted)
            for c in params.case_mix
            if c in frame
        }
    )


def pool_sparse_outcome_levels(
    values: pd.Series, outcome: pd.Series, min_events: int
) -> tuple[pd.Series, str | None]:
    """Categories with fewer than ``min_events`` events (outcome 1) or non-events (0) pooled
    into "other (pooled)"; if that pooled level is itself that sparse it joins the most
    common category. Returns the new values and a note (None when nothing changed)."""
    values = plain_levels(values)
    known = values.notna() & outcome.notna()
    ones = values[known & outcome.eq(1)].value_counts()
    zeros = values[known & outcome.eq(0)].value_counts()
    levels = values[known].value_counts()
    sparse = [
        lvl
        for lvl in levels.index
        if min(ones.get(lvl, 0), zeros.get(lvl, 0)) < min_events and lvl != POOLED
    ]
    out = values.where(~values.isin(sparse) | values.isna(), POOLED)
    pooled = out[known] == POOLED
    merged = None
    if pooled.any():
        y = outcome[known][pooled]
        if min(int(y.eq(1).sum()), int(y.eq(0).sum())) < min_events:
            common = out[known][~pooled].value_counts()
            if len(common):
                merged = str(common.index[0])
                out = out.where(out != POOLED, merged)
    if not sparse and merged is None:
        return values, None
    # Counts, never the categories' own labels: a note is shared on the model card, and an
    # input label has no business there unscrubbed.
    note = f"{values.name}: " + (f"{len(sparse)} categories pooled" if sparse else "")
    if merged is not None:
        note += ("; " if sparse else "") + "the pooled level joined the most common category"
    return out, note + f" (fewer than {min_events} events or non-events)"


def pool_for_model(
    frame: pd.DataFrame,
    params: ModelsParams,
    event: str | None = None,
    counted: pd.Series | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """A model population's case mix pooled as the model needs: rare levels among the
    ``counted`` rows (``pool_case_mix``), then, for a binary outcome or event ``event``,
    sparse outcome cells (``pool_sparse_outcome_levels``). Returns the frame and the notes
    for the card. Every analysis of one population pools through here, so that the
    sensitivity analyses' complete-case rows are the main model's."""
    frame = pool_case_mix(frame, params, counted)
    notes: list[str] = []
    if event is not None:
        for c in params.case_mix:
            if c in frame:
                values, note = pool_sparse_outcome_levels(
                    frame[c], frame[event], params.min_level_events
                )
                frame = frame.assign(**{c: values})
                notes += [note] if note else []
    return frame, notes


def analysis_frame(
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    episodes: pd.DataFrame,
    params: ModelsParams,
) -> pd.DataFrame:
    """One row per episode: engagement features, outcomes, case mix, the cluster key, the
    referral date (temporal validation; never a predictor) and whether it has ended."""
    case_mix = [c for c in params.case_mix if c in episodes]
    dated = ["referral_date"] if "referral_date" in episodes else []
    ep = episodes[["episode_id", *dated, *case_mix]].copy()
    for column in case_mix:
        ep[column] = pool_rare_levels(ep[column].astype("string"), params.min_level_count)
    ep[CLUSTER] = cluster_key(episodes, params).to_numpy()
    ended = (
        episodes["end_date"].notna()
        if "end_date" in episodes
        else pd.Series(False, index=episodes.index)
    )
    ep["ended"] = ended.to_numpy()
    frame = features.merge(
        outcomes.drop(columns=["window_complete"]), on="episode_id", validate="one_to_one"
    ).merge(ep, on="episode_id", validate="one_to_one")
    frame.attrs["cluster_note"] = cluster_note(ep[CLUSTER], params)
    count = frame["flags_count"].where(frame["flags_assessed"] > 0)
    frame[FLAGS_GROUP] = pd.Categorical(
        np.select(
            [(count == 0).to_numpy(), (count == 1).to_numpy(), (count >= 2).to_numpy()],
            list(FLAGS_GROUPS),
            default=None,
        ),  # type: ignore[call-overload]  # numpy stubs: string choices with a None default
        categories=FLAGS_GROUPS,
    ).astype(object)
    frame.loc[count.isna(), FLAGS_GROUP] = np.nan
    for column in frame.columns:
        if column.startswith("flag_") or column == "first_attended":
            frame[column] = frame[column].astype("Float64").astype(float)
    # Competing endings for the dropout analysis: 1 dropped out, 2 ended otherwise, 0 open.
    frame["ending_type"] = np.where(
        frame["dropout_event"].astype("boolean").fillna(False),
        1,
        np.where(frame["ended"], 2, 0),
    )
    return frame


def adjustment(frame: pd.DataFrame, params: ModelsParams) -> list[str]:
    """Baseline severity and the case-mix columns this export has (and that vary)."""
    present = [c for c in ("primary_baseline", *params.case_mix) if c in frame]
    return [c for c in present if frame[c].nunique(dropna=True) > 1]


def exposures(frame: pd.DataFrame, params: ModelsParams) -> dict[str, list[str]]:
    """Exposure sets: each feature block, each flag alone, and the flags group (0/1/2+)."""
    sets = {block: list(cols) for block, cols in params.blocks.items()}
    sets |= {flag: [flag] for flag in params.flags}
    sets["flags group"] = [FLAGS_GROUP]
    return sets


# --- fitting many models without losing any --------------------------------------------


def _attempt(
    fit: Callable[[], EffectFit], model: str, formula: str, method: str, n: int
) -> EffectFit:
    try:
        return fit()
    except ModelError as exc:
        return EffectFit.failed(failed_card(model, formula, method, n, str(exc)))


def recorded_features(frame: pd.DataFrame, wanted: list[str]) -> tuple[list[str], list[str]]:
    """The features of ``wanted`` this export records for anyone, and those it does not
    (a column absent, or missing for every episode: the data behind it are not in the
    export, e.g. session alliance in the NHS Talking Therapies data set)."""
    have = [c for c in wanted if c in frame and frame[c].notna().any()]
    return have, [c for c in wanted if c not in have]


def prepare_rows(
    frame: pd.DataFrame,
    needed: list[str],
    exposure: list[str],
    adjust: list[str],
    reference: str | None = None,
) -> pd.DataFrame:
    """The rows complete on every column of the adjusted model, so that the unadjusted and
    adjusted estimates rest on the same people; continuous predictors per SD of those rows
    (or of the rows where ``reference`` is present, so another analysis keeps the unit).

    ``needed``: further columns every analysed row must have (outcome, cluster …);
    ``exposure`` and ``adjust``: the exposure and adjustment predictors. Raises
    ``ModelError`` if no episode has a value of some exposure column. Returns a new frame
    (``frame`` is not changed)."""
    missing = recorded_features(frame, exposure)[1]
    if missing:
        raise ModelError(f"not in this export: {', '.join(missing)} (no episode has a value)")
    rows = frame.dropna(subset=[*needed, *exposure, *adjust])
    numeric = [c for c in [*exposure, *adjust] if pd.api.types.is_numeric_dtype(rows[c])]
    categorical = [c for c in adjust if c not in numeric and c not in exposure]
    if categorical:  # case mix: the most common level is the reference
        rows = rows.assign(**{c: most_common_first(rows[c]) for c in categorical})
    return standardise(rows, numeric, None if reference is None else rows[reference].notna())


def _side_by_side(table: pd.DataFrame, exposure_terms: dict[str, list[str]]) -> pd.DataFrame:
    """Unadjusted and adjusted estimates of each exposure term in one row, blocks in order."""
    wanted = {(b, t) for b, terms in exposure_terms.items() for t in terms}
    rows = table[[(b, t) in wanted for b, t in zip(table["block"], table["term"], strict=True)]]
    if rows.empty:
        return pd.DataFrame()
    values = [c for c in TIDY_COLUMNS if c not in ("model", "term", "scale")]
    wide = rows.pivot_table(
        index=["block", "term"], columns="adjusted", values=values, aggfunc="first"
    )
    pairs: list[tuple[str, bool]] = list(wide.columns)  # type: ignore[arg-type]  # a MultiIndex
    wide.columns = [f"{v}_{'adjusted' if a else 'unadjusted'}" for v, a in pairs]
    order = [f"{v}_{a}" for a in ("unadjusted", "adjusted") for v in values]
    wide = wide.reindex(columns=order).reset_index()
    wide.insert(2, "scale", rows["scale"].iloc[0])
    rank = {b: i for i, b in enumerate(exposure_terms)}
    wide["_rank"] = wide["block"].map(rank)
    return wide.sort_values(["_rank", "term"]).drop(columns="_rank").reset_index(drop=True)


def describe_design(
    card: ModelCard, rows: pd.DataFrame, predictors: list[str], battery: Battery
) -> None:
    """What a reviewer needs beside the estimates, on the card: the SD behind each per-SD
    term, the reference level of each categorical term, the events the model rests on and
    the number of coefficients (events per variable)."""
    units = rows.attrs.get("sd_units", {})
    card.units = {c: units[c] for c in predictors if c in units}
    card.reference_levels = reference_levels(rows, predictors)
    card.parameters = sum(
        1
        if pd.api.types.is_numeric_dtype(rows[c])
        else max(int(rows[c].nunique(dropna=True)) - 1, 0)
        for c in dict.fromkeys(predictors)
        if c in rows
    )
    if battery.event is not None and battery.event in rows:
        y = rows[battery.event].astype(float)
        events = int(y.sum())
        card.events = events if battery.kind == catalog.DROPOUT else min(events, len(y) - events)


FitOne = Callable[[pd.DataFrame, list[str], str, int], EffectFit]
"""Fit one model: (rows, predictors, model id, population N) -> fit."""


@dataclass(frozen=True)
class Battery:
    """A family of effect models: the catalogue ``kind``, the columns every analysed row
    needs (the first is the one whose presence defines the population), the fitter, and
    how the method and outcome are described on the cards; ``event``: the binary outcome
    or event column whose sparse case-mix cells are pooled (None for a linear model)."""

    kind: str
    needed: list[str]
    fit_one: FitOne
    method: str
    outcome_label: str
    event: str | None = None


def _battery(
    frame: pd.DataFrame,
    params: ModelsParams,
    battery: Battery,
    sets: dict[str, list[str]],
    also_adjust: tuple[str, ...] = (),
    adjusted_only: bool = False,
) -> Results:
    """Fit unadjusted and adjusted models for every exposure set on shared rows;
    ``also_adjust``: further adjustment columns (a sensitivity analysis);
    ``adjusted_only``: the adjusted models alone (what a sensitivity analysis reads)."""
    kind, needed, fit_one = battery.kind, battery.needed, battery.fit_one
    method, outcome_label = battery.method, battery.outcome_label
    # Rare case-mix levels are pooled again within this population.
    frame, pooling = pool_for_model(frame, params, battery.event)
    adjust = adjustment(frame, params)
    adjust += [c for c in also_adjust if c in frame and c not in adjust]
    tables: list[pd.DataFrame] = []
    cards: list[ModelCard] = []
    terms: dict[str, list[str]] = {}
    for block, wanted in sets.items():
        exposure, absent = recorded_features(frame, wanted)
        if not exposure:  # nothing of the block recorded: say so (the fit then fails)
            exposure = wanted
        for adjusted in (True,) if adjusted_only else (False, True):
            predictors = exposure + (adjust if adjusted else [])
            model = catalog.model_id(kind, block, adjusted)
            formula = f"{outcome_label} ~ {' + '.join(predictors)}"

            def fit(
                exposure: list[str] = exposure,
                predictors: list[str] = predictors,
                model: str = model,
            ) -> EffectFit:
                # Only the model's columns: copying the whole frame (~100 columns) for
                # each of dozens of models took minutes at national scale.
                columns = [c for c in dict.fromkeys([*needed, *exposure, *adjust]) if c in frame]
                rows = prepare_rows(frame[columns], needed, exposure, adjust)
                result = fit_one(rows, predictors, model, len(frame))
                describe_design(result.card, rows, predictors, battery)
                return result

            result = _attempt(fit, model, formula, method, int(frame[needed[0]].notna().sum()))
            if absent and exposure != wanted:
                result.card.notes.append(
                    f"not in this export, so left out of the block: {', '.join(absent)}"
                )
            table = result.coefficients.assign(block=block, adjusted=adjusted)
            tables.append(table)
            if "cluster_note" in frame.attrs:
                result.card.notes.append(frame.attrs["cluster_note"])
            if adjusted and pooling:
                result.card.notes.append("case mix, sparse outcome cells: " + "; ".join(pooling))
            cards.append(result.card)
            own = [t for t in table["term"] if any(t.startswith(e) for e in exposure)]
            terms[block] = sorted(set(terms.get(block, [])) | set(own))
    table = pd.concat([t for t in tables if not t.empty] or [pd.DataFrame()], ignore_index=True)
    side = _side_by_side(table, terms) if not table.empty else pd.DataFrame()
    return Results({kind: table, f"{kind}_side_by_side": side}, cards)


# --- 0. the final score (ANCOVA) and who the outcomes are defined for -------------------

BASELINE = "primary_baseline"


def final_score_models(
    frame: pd.DataFrame,
    params: ModelsParams,
    sets: dict[str, list[str]] | None = None,
    also_adjust: tuple[str, ...] = (),
    adjusted_only: bool = False,
) -> Results:
    """Linear regressions of the final score (primary instrument, landmark population) on
    each exposure set with the baseline score always among the predictors (ANCOVA): the
    "unadjusted" model adds nothing else, the adjusted one the case mix too. Errors are
    clustered by therapist. No threshold decides who did poorly, so the estimate does not
    depend on where the baseline sits relative to a reliable-change criterion."""
    population = frame[frame["final_score"].notna()] if "final_score" in frame else frame[:0]

    def fit_one(rows: pd.DataFrame, predictors: list[str], model: str, n: int) -> EffectFit:
        options = FitOptions(params.min_clusters, n)
        with_baseline = list(dict.fromkeys([*predictors, BASELINE]))
        fit = fit_linear(rows, "final_score", with_baseline, CLUSTER, model, options)
        fit.card.notes.append(
            "ANCOVA: the baseline score is a covariate of both the unadjusted and the "
            "adjusted model ('unadjusted' = no case-mix adjustment)"
        )
        return fit

    battery = Battery(
        catalog.FINAL_SCORE,
        ["final_score", BASELINE, CLUSTER],
        fit_one,
        "linear regression (OLS) of the final score on the baseline (ANCOVA), "
        "cluster-robust errors",
        "final_score",
    )
    sets = exposures(population, params) if sets is None else sets
    return _battery(population, params, battery, sets, also_adjust, adjusted_only)


def baseline_severity(frame: pd.DataFrame) -> pd.DataFrame:
    """Episodes with a landmark outcome measured (in treatment at the landmark, two or more
    primary scores, the last after the landmark), at and below caseness at baseline: how
    many, how many improved or deteriorated reliably, mean baseline and mean change. Those
    below caseness are outside the improvement and recovery outcomes' population
    (``outcomes.population: caseness``): this is where they are reported."""
    after = frame["primary_last_after_landmark"].astype("boolean").fillna(False).astype(bool)
    scored = (
        frame["in_treatment_at_landmark"].astype(bool)
        & after
        & frame["primary_n"].fillna(0).ge(2)
        & frame["primary_reliable_change"].notna()
    )
    rows = frame[scored]
    case = rows["primary_case_start"].astype("boolean").fillna(False).astype(bool)
    out = []
    for label, g in (("at caseness", rows[case]), ("below caseness", rows[~case])):
        rc = g["primary_reliable_change"]
        out.append(
            {
                "baseline": label,
                "episodes": len(g),
                "improved": int(rc.eq(1).sum()),
                "deteriorated": int(rc.eq(-1).sum()),
                "share_improved": float(rc.eq(1).mean()) if len(g) else np.nan,
                "share_deteriorated": float(rc.eq(-1).mean()) if len(g) else np.nan,
                "mean_baseline": float(g["primary_baseline"].mean()) if len(g) else np.nan,
                "mean_change": float(g["primary_change"].mean()) if len(g) else np.nan,
                "in_outcome_population": bool(
                    g["outcome_population"].astype("boolean").fillna(False).any()
                )
                if "outcome_population" in g
                else True,
            }
        )
    return pd.DataFrame(out)


# --- 1. poor outcome --------------------------------------------------------------------


def poor_outcome_models(
    frame: pd.DataFrame,
    params: ModelsParams,
    sets: dict[str, list[str]] | None = None,
    also_adjust: tuple[str, ...] = (),
    adjusted_only: bool = False,
) -> Results:
    """Logistic regressions of the landmark poor outcome on each exposure set, unadjusted and
    adjusted for baseline severity and case mix, with errors clustered by therapist."""
    population = frame[frame["poor_outcome"].notna()]

    def fit_one(rows: pd.DataFrame, predictors: list[str], model: str, n: int) -> EffectFit:
        options = FitOptions(params.min_clusters, n)
        return fit_logistic(rows, "poor_outcome", predictors, CLUSTER, model, options)

    battery = Battery(
        catalog.POOR_OUTCOME,
        ["poor_outcome", CLUSTER],
        fit_one,
        "logistic regression (GLM binomial), cluster-robust errors",
        "poor_outcome",
        event="poor_outcome",
    )
    sets = exposures(population, params) if sets is None else sets
    return _battery(population, params, battery, sets, also_adjust, adjusted_only)


# --- 2. dropout -------------------------------------------------------------------------


def dropout_population(frame: pd.DataFrame) -> pd.DataFrame:
    """The dropout models' population: in treatment at the landmark with a follow-up time;
    the event as a float."""
    population = frame[frame["in_treatment_at_landmark"] & frame["dropout_time_days"].notna()]
    return population.assign(dropout_event=population["dropout_event"].astype(float))


def index_exposure(params: ModelsParams) -> list[str]:
    """The disengagement-index exposure set (``models.blocks.index``)."""
    return list(params.blocks.get("index", ("disengagement_index",)))


def dropout_models(
    frame: pd.DataFrame,
    params: ModelsParams,
    sets: dict[str, list[str]] | None = None,
    also_adjust: tuple[str, ...] = (),
    adjusted_only: bool = False,
) -> Results:
    """Cox models of dropout from the landmark (cause-specific: other endings censor), the
    Kaplan–Meier curves and the cumulative incidence of dropout by flags group."""
    population = dropout_population(frame)

    def fit_one(rows: pd.DataFrame, predictors: list[str], model: str, n: int) -> EffectFit:
        options = FitOptions(params.min_clusters, n)
        return fit_cox(
            rows, "dropout_time_days", "dropout_event", predictors, CLUSTER, model, options
        )

    if sets is None:
        sets = {
            "index": index_exposure(params),
            "flags group": [FLAGS_GROUP],
        }
    battery = Battery(
        catalog.DROPOUT,
        ["dropout_time_days", "dropout_event", CLUSTER],
        fit_one,
        "Cox PH (PHReg, Efron ties), cluster-robust errors",
        "Surv(dropout_time_days, dropout_event)",
        event="dropout_event",
    )
    results = _battery(population, params, battery, sets, also_adjust, adjusted_only)
    if also_adjust or adjusted_only:  # a sensitivity analysis: the models alone
        return results
    results.tables["dropout_proportional_hazards"] = proportional_hazards(results.cards)
    if params.dropout_periods_days:
        results.extend(dropout_by_period(frame, params))
    curves = population.dropna(subset=[FLAGS_GROUP])
    if curves.empty or curves["dropout_event"].sum() == 0:
        return results
    km = kaplan_meier(curves, "dropout_time_days", "dropout_event", FLAGS_GROUP)
    results.tables["dropout_km"] = km
    results.tables["dropout_at_risk"] = at_risk(curves, FLAGS_GROUP, params.at_risk_weeks)
    results.tables["dropout_cumulative_incidence"] = cumulative_incidence(curves, FLAGS_GROUP)
    return results


def at_risk(data: pd.DataFrame, group: str, weeks: tuple[int, ...]) -> pd.DataFrame:
    """Numbers still in treatment (at risk of dropout) at fixed weeks after the landmark."""
    rows = []
    for label, g in data.groupby(group, sort=True):
        t = g["dropout_time_days"].to_numpy(float)
        for w in weeks:
            rows.append({"group": label, "week": w, "n_at_risk": int((t >= 7 * w).sum())})
    return pd.DataFrame(rows)


def _survival_any(g: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Kaplan–Meier probability of no ending of any kind, at (just after) ``times``: what
    one dropout's step of the cumulative incidence is scaled by."""
    sf = SurvfuncRight(
        g["dropout_time_days"].to_numpy(float), (g["ending_type"] > 0).to_numpy(float)
    )
    at = np.searchsorted(sf.surv_times, times, side="right") - 1
    return np.where(at >= 0, sf.surv_prob[np.clip(at, 0, None)], 1.0)


def cumulative_incidence(data: pd.DataFrame, group: str) -> pd.DataFrame:
    """Aalen–Johansen cumulative incidence of dropout with other endings as a competing
    event (1 − Kaplan–Meier overstates dropout when completion removes people from risk)."""
    rows = []
    for label, g in data.groupby(group, sort=True):
        if not (g["ending_type"] == 1).any():  # no dropout in this group: incidence 0
            rows.append(
                pd.DataFrame(
                    {"group": [label], "time": [0.0], "incidence_dropout": [0.0]}
                    | {"ci_low": [0.0], "ci_high": [0.0], "n_at_risk": [len(g)]}
                    | {"survival_any": [1.0]}
                )
            )
            continue
        with np.errstate(divide="ignore", invalid="ignore"):  # last time: no one left
            ci = CumIncidenceRight(
                g["dropout_time_days"].to_numpy(float), g["ending_type"].to_numpy(int)
            )
        est, se = ci.cinc[0], ci.cinc_se[0]
        band = log_log_interval(est, se)
        rows.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": ci.times,
                    "incidence_dropout": est,
                    "ci_low": band[0],
                    "ci_high": band[1],
                    "n_at_risk": len(g)
                    - np.searchsorted(np.sort(g["dropout_time_days"].to_numpy()), ci.times),
                    "survival_any": _survival_any(g, ci.times),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def proportional_hazards(cards: list[ModelCard]) -> pd.DataFrame:
    """Every Cox card's Grambsch–Therneau test (``ModelCard.ph_test``: per term and global)
    as one table, with the verdict at 0.05, so that the report shows it beside each HR."""
    rows = [
        {"model": c.model, **t, "holds": bool(t["p"] >= 0.05) if np.isfinite(t["p"]) else None}
        for c in cards
        for t in c.ph_test
    ]
    columns = ["model", "term", "chisq", "df", "p", "holds"]
    return pd.DataFrame(rows, columns=columns)


def log_log_interval(
    estimate: np.ndarray, se: np.ndarray, z: float = 1.959964
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise interval for a cumulative incidence F on the log(−log) scale (the
    transform of Kalbfleisch & Prentice; R survival's ``conf.type = "log-log"``):
    F^exp(±z·se / (F·log F)). It stays inside (0, 1) without clipping and is asymmetric
    near 0, as it should be; where F is 0 or 1 the interval is that point."""
    f = np.asarray(estimate, float)
    se = np.asarray(se, float)
    inside = (f > 0) & (f < 1)
    safe = np.where(inside, f, 0.5)
    a = z * se / (safe * np.abs(np.log(safe)))
    low = np.where(inside, safe ** np.exp(a), f)
    high = np.where(inside, safe ** np.exp(-a), f)
    return low, high


def dropout_by_period(frame: pd.DataFrame, params: ModelsParams) -> Results:
    """The adjusted disengagement-index dropout model within each follow-up period
    (``params.dropout_periods_days``: cut points in days after the landmark): the first
    period holds every row of the main model; in a later one, clients still in treatment at
    its start enter then (delayed entry, at risk after it), and follow-up is censored at the
    period's end. Where proportional hazards fail these, not the single hazard ratio,
    describe how the association changes over time. Same exposure unit (per SD of the main
    model's rows) and adjustment as the main model; a period's own sparse case-mix cells
    are pooled again (``pool_for_model``), said on its card."""
    population, _ = pool_for_model(dropout_population(frame), params, "dropout_event")
    exposure = index_exposure(params)
    adjust = adjustment(population, params)
    needed = ["dropout_time_days", "dropout_event", CLUSTER]
    cuts = [0.0, *map(float, params.dropout_periods_days), np.inf]
    tables, cards = [], []
    try:
        rows = prepare_rows(population[[*needed, *exposure, *adjust]], needed, exposure, adjust)
    except ModelError as exc:
        card = failed_card(catalog.DROPOUT_BY_PERIOD, "by period", "Cox PH", 0, str(exc))
        return Results(cards=[card])
    time = rows["dropout_time_days"]
    for start, end in itertools.pairwise(cuts):
        label = f"days {start:g}–{end:g}" if np.isfinite(end) else f"days {start:g}+"
        name = catalog.model_id(catalog.DROPOUT_BY_PERIOD, label)
        first = start == cuts[0]
        at_risk = rows if first else rows[time > start]
        period = at_risk.assign(
            period_entry=start,
            period_time=np.minimum(at_risk["dropout_time_days"], end),
            period_event=at_risk["dropout_event"] * (at_risk["dropout_time_days"] <= end),
        )
        period, pooling = pool_for_model(period, params, "period_event")
        kept = [c for c in adjust if period[c].nunique(dropna=True) > 1]

        def fit(
            period: pd.DataFrame = period,
            name: str = name,
            kept: list[str] = kept,
            entry: str | None = None if first else "period_entry",
        ) -> EffectFit:
            options = FitOptions(params.min_clusters, len(period))
            return fit_cox(
                period,
                "period_time",
                "period_event",
                exposure + kept,
                CLUSTER,
                name,
                options,
                entry=entry,
            )

        formula = "Surv(entry, time, event) ~ index + adjustment"
        result = _attempt(fit, name, formula, "Cox PH", len(period))
        if pooling:
            result.card.notes.append("case mix, sparse outcome cells: " + "; ".join(pooling))
        if len(kept) < len(adjust):
            dropped = ", ".join(c for c in adjust if c not in kept)
            result.card.notes.append(f"constant within this period, so not adjusted for: {dropped}")
        cards.append(result.card)
        own = result.coefficients[result.coefficients["term"].isin(exposure)]
        tables.append(
            own.assign(
                period=label,
                start_days=start,
                end_days=end if np.isfinite(end) else np.nan,
                n_events=int(period["period_event"].sum()),
            )
        )
    table = pd.concat([t for t in tables if not t.empty] or [pd.DataFrame()], ignore_index=True)
    return Results({"dropout_by_period": table}, cards)


# --- 3. trajectories ----------------------------------------------------------------------

TRAJECTORY_FORMULA = "score ~ weeks + alliance_score_within + alliance_score_between"
LOG_TIME_FORMULA = "score ~ log_weeks + alliance_score_within + alliance_score_between"
# The concurrent within-client term stays in: the lag's person mean contains the current
# session's alliance, so without it the lagged term would partly echo the concurrent effect.
LAGGED_FORMULA = (
    "score ~ weeks + alliance_score_within + alliance_lag_within + alliance_lag_between"
)


def trajectory_frame(
    sessions: pd.DataFrame,
    measures: pd.DataFrame,
    episodes: pd.DataFrame,
    instrument: str,
    params: ModelsParams,
) -> pd.DataFrame:
    """Long table: one row per score of ``instrument`` taken at a session, with weeks since
    the episode's first scheduled appointment, that session's alliance split into within-
    and between-client parts, and the cluster (therapist) key."""
    first = sessions.groupby("episode_id")["scheduled_date"].min()
    scores = measures[measures["instrument"] == instrument]
    if "session_id" not in scores or "alliance_score" not in sessions:
        raise ModelError(
            "trajectory: needs measures.session_id and sessions.alliance_score to "
            "relate each score to that session's alliance"
        )
    # The inner join on the sessions' unique key, by Arrow's hash lookup (pandas' merge of
    # millions of id strings took seconds); the scores keep their order.
    at = positions(sessions["session_id"], scores["session_id"])
    alliance = sessions["alliance_score"].to_numpy(dtype=float, na_value=np.nan)
    d = scores[at >= 0].assign(alliance_score=alliance[at[at >= 0]]).reset_index(drop=True)
    d = d.dropna(subset=["alliance_score"])
    d = d.assign(weeks=(d["measure_date"] - d["episode_id"].map(first)).dt.days / 7.0)
    key = pd.Series(cluster_key(episodes, params).to_numpy(), index=episodes["episode_id"])
    d[CLUSTER] = d["episode_id"].map(key)
    d = d.sort_values(["episode_id", "measure_date", "session_id"], kind="stable")
    # Decelerating change (log time) and the alliance of the previous scored session (the
    # lagged-alliance sensitivity: alliance measured before the score it predicts).
    d["log_weeks"] = np.log1p(d["weeks"])
    d["alliance_lag"] = d.groupby("episode_id")["alliance_score"].shift(1)
    d = person_mean_centre(d, "alliance_score", "episode_id")
    lagged = person_mean_centre(d.dropna(subset=["alliance_lag"]), "alliance_lag", "episode_id")
    d = d.join(lagged[["alliance_lag_within", "alliance_lag_between"]])
    return d.reset_index(drop=True)


def sample_clusters(
    long: pd.DataFrame, max_episodes: int | None, seed: int, setting: str
) -> tuple[pd.DataFrame, str | None]:
    """About ``max_episodes`` episodes as a random sample of whole clusters (therapists'
    caseloads, drawn in random order until the sample holds ``max_episodes``); ``long`` (one
    or more rows per episode, with ``episode_id`` and the cluster key) unchanged, and no
    note, when it is small enough. ``setting`` names the param, for the note.

    Used where an analysis's cost grows with the cohort but its precision stops mattering
    long before national scale (mixed models, cross-validated prediction, multiple
    imputation). Sampling whole clusters keeps every client's rows and every sampled
    therapist's clients together, so the estimates are unbiased for the whole cohort and
    the clustering is intact; the intervals are the sample's (wider than a full fit's).
    """
    episodes = long["episode_id"].nunique()
    if max_episodes is None or episodes <= max_episodes:
        return long, None
    per_cluster = long.groupby(CLUSTER, sort=True)["episode_id"].nunique()
    order = np.random.default_rng(seed).permutation(per_cluster.index.to_numpy())
    cumulative = per_cluster.reindex(order).cumsum().to_numpy()
    keep = order[: int(np.searchsorted(cumulative, max_episodes)) + 1]
    sample = long[long[CLUSTER].isin(set(keep))].reset_index(drop=True)
    note = (
        f"fitted on a random sample of whole clusters: {len(keep)} of {len(per_cluster)} "
        f"clusters, {sample['episode_id'].nunique()} of {episodes} episodes "
        f"({setting} = {max_episodes}, seed {seed}); intervals are the sample's"
    )
    return sample, note


def _client_model(long: pd.DataFrame) -> TrajectoryFit | ModelCard:
    """Random intercept and slope per client; the failed card if it cannot be fitted."""
    main = catalog.TRAJECTORY_CLIENT
    try:
        return fit_trajectory(long, TRAJECTORY_FORMULA, "episode_id", "~weeks", main)
    except ModelError as exc:
        return failed_card(main, TRAJECTORY_FORMULA, EXACT_METHOD, len(long), str(exc))


def _therapist_model(long: pd.DataFrame, client: TrajectoryFit | None) -> TrajectoryFit | ModelCard:
    """Therapist as a further level (clients' intercepts and slopes as variance components
    within therapists), its fixed effects compared with the two-level ``client`` fit; the
    failed card if it cannot be fitted."""
    name = catalog.TRAJECTORY_THERAPIST
    try:
        three = fit_trajectory(
            long,
            TRAJECTORY_FORMULA,
            CLUSTER,
            "1",  # therapist intercept (statsmodels drops it when vc_formula is set)
            name,
            vc_formula={
                "client intercept": "0 + C(episode_id)",
                "client slope": "0 + C(episode_id):weeks",
            },
        )
    except ModelError as exc:
        return failed_card(name, TRAJECTORY_FORMULA, NESTED_METHOD, len(long), str(exc))
    three.card.notes.append(
        "client intercept and slope are independent variance components here "
        "(statsmodels cannot correlate nested components)"
    )
    if client is not None:
        diff = (
            three.coefficients.set_index("term")["estimate"]
            - client.coefficients.set_index("term")["estimate"]
        ).abs()
        three.card.notes.append(
            "largest change in a fixed effect vs the two-level model: "
            f"{diff.idxmax()} by {diff.max():.4g}"
        )
    return three


def _aic(fit: TrajectoryFit, n_parameters: int) -> float:
    llf = fit.card.log_likelihood
    return np.nan if llf is None else -2.0 * float(llf) + 2.0 * n_parameters


def time_shape(linear: TrajectoryFit, log_time: TrajectoryFit) -> pd.DataFrame:
    """Linear against log(1 + weeks) time in the two-level model, on the same rows and with
    the same number of parameters (ML fits, so the log-likelihoods compare): the converged
    shape with the lower AIC is marked preferred (``chosen``; with equal parameter counts,
    the higher likelihood). The main models keep linear time; the table says whether a
    reader should prefer the log-time fit."""
    rows = []
    for shape, fit in (("linear weeks", linear), ("log(1 + weeks)", log_time)):
        k = len(fit.coefficients) + len(fit.variance)  # fixed + variance parameters
        rows.append(
            {
                "model": fit.card.model,
                "time": shape,
                "log_likelihood": fit.card.log_likelihood,
                "aic": _aic(fit, k),
                "n_analysed": fit.card.n_analysed,
                "converged": fit.card.converged,
            }
        )
    out = pd.DataFrame(rows)
    usable = out["aic"].where(out["converged"])
    out["chosen"] = usable == usable.min()
    return out


def _extra_trajectory_fits(
    long: pd.DataFrame,
) -> list[TrajectoryFit | ModelCard]:
    """The log-time client model (compared with linear time in ``trajectory_time_shape``)
    and the lagged-alliance sensitivity model (linear time, the previous scored session's
    alliance split into within- and between-client parts); failed cards where they cannot
    be fitted."""
    out: list[TrajectoryFit | ModelCard] = []
    lagged = long.dropna(subset=["alliance_lag_within"])
    for name, formula, re_formula, rows in (
        (catalog.TRAJECTORY_LOG_TIME, LOG_TIME_FORMULA, "~log_weeks", long),
        (catalog.TRAJECTORY_LAGGED, LAGGED_FORMULA, "~weeks", lagged),
    ):
        try:
            fit = fit_trajectory(rows, formula, "episode_id", re_formula, name)
        except ModelError as exc:
            out.append(failed_card(name, formula, EXACT_METHOD, len(rows), str(exc)))
            continue
        if name == catalog.TRAJECTORY_LAGGED:
            fit.card.notes.append(
                "sensitivity: alliance at the previous scored session predicting this score "
                "(the main model uses the same session's alliance, measured beside the score)"
            )
        out.append(fit)
    return out


def _mark_model_to_read(fits: list[TrajectoryFit]) -> None:
    """Note on the card of the trajectory model to read (methods §5.3): the three-level
    model when it converged with its therapist variance off the boundary, else the
    two-level one."""
    three = [f for f in fits if f.card.model == catalog.TRAJECTORY_THERAPIST]
    therapist_at_boundary = any(
        "boundary" in n and f"{CLUSTER}: intercept" in n for f in three for n in f.card.notes
    )
    estimable = bool(three) and bool(three[0].card.converged) and not therapist_at_boundary
    chosen = catalog.TRAJECTORY_THERAPIST if estimable else catalog.TRAJECTORY_CLIENT
    for f in fits:
        if f.card.model == chosen:
            f.card.notes.append(
                "the trajectory model to read (methods §5.3): "
                + (
                    "the therapist level is estimable"
                    if estimable
                    else "the therapist level was not requested (models.therapist_level) "
                    "or could not be fitted"
                    if not three
                    else "the therapist level is not estimable here (not converged or the "
                    "therapist variance at the boundary)"
                )
            )


def trajectory_models(long: pd.DataFrame, params: ModelsParams) -> Results:
    """Random intercept and slope per client on every episode (the exact fit); then
    therapist as a further level (clients' intercepts and slopes as variance components
    within therapists; statsmodels), compared. Above ``params.therapist_level_max_episodes``
    episodes the three-level model alone is fitted on one random sample of whole clusters
    (``sample_clusters``), said on its card."""
    client = _client_model(long)
    outcomes = [client]
    if params.therapist_level:
        two_level = client if isinstance(client, TrajectoryFit) else None
        rows, sampled = sample_clusters(
            long,
            params.therapist_level_max_episodes,
            params.trajectory_sample_seed,
            "models.therapist_level_max_episodes",
        )
        three = _therapist_model(rows, two_level)
        if sampled:
            (three.card if isinstance(three, TrajectoryFit) else three).notes.append(sampled)
        outcomes.append(three)
    fits = [f for f in outcomes if isinstance(f, TrajectoryFit)]
    _mark_model_to_read(fits)
    if isinstance(client, TrajectoryFit):
        outcomes += _extra_trajectory_fits(long)
    fitted = [f for f in outcomes if isinstance(f, TrajectoryFit)]
    out = Results(cards=[f.card if isinstance(f, TrajectoryFit) else f for f in outcomes])
    if fitted:
        out.tables["trajectory"] = pd.concat([f.coefficients for f in fitted], ignore_index=True)
        out.tables["trajectory_variance"] = pd.concat(
            [f.variance for f in fitted], ignore_index=True
        )
    log_time = [f for f in fitted if f.card.model == catalog.TRAJECTORY_LOG_TIME]
    if isinstance(client, TrajectoryFit) and log_time:
        out.tables["trajectory_time_shape"] = time_shape(client, log_time[0])
    return out


# --- 4. dose–response -------------------------------------------------------------------


def dose_response_tables(frame: pd.DataFrame, params: ModelsParams) -> Results:
    """Share reliably improved on the primary instrument by sessions attended (descriptive)."""
    d = frame[frame["primary_n"].fillna(0) >= 2]
    improved = (
        d["primary_reliable_change"].eq(1).astype(float).where(d["primary_reliable_change"].notna())
    )
    card = ModelCard(
        model=catalog.DOSE_RESPONSE,
        formula="reliably_improved ~ log(sessions_attended)",
        method="probit GLM on log sessions (Howard et al. 1986 style); descriptive",
        n_input=len(frame),
        n_analysed=0,
        notes=[
            "descriptive only: clients who improve stop sooner (good-enough level), so the "
            "curve mixes cause and consequence and is not a causal dose effect"
        ],
    )
    try:
        with captured_warnings(card):
            observed, curve = dose_response(
                d["sessions_attended_total"], improved, params.dose_max_sessions
            )
    except ModelError as exc:
        card = failed_card(
            catalog.DOSE_RESPONSE,
            "reliably_improved ~ log(sessions)",
            "probit GLM",
            len(d),
            str(exc),
        )
        return Results(cards=[card])
    card.n_analysed = int(observed["episodes"].sum())
    return Results({"dose_response_observed": observed, "dose_response_curve": curve}, [card])


# --- everything -------------------------------------------------------------------------


def analysis_tasks(
    tables: dict[str, pd.DataFrame],
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    params: ModelsParams,
    primary_instrument: str,
    plan: AnalysisParams | None = None,
) -> dict[str, Callable[[], Results]]:
    """Every analysis of the models stage (``ANALYSES``, in the order of the report) as a
    task that fits it: the analyses are independent of each other, so a stage may run them
    side by side (``pipeline/engine/tasks.py``). ``plan``: the declared analyses the
    early-change sensitivity refits (default: the default plan)."""
    from pipeline.models.confounding import early_change_sensitivity

    frame = analysis_frame(features, outcomes, tables["episodes"], params)
    run = {
        "final score": lambda: final_score_models(frame, params).extend(
            Results({"baseline_severity": baseline_severity(frame)})
        ),
        "poor outcome": lambda: poor_outcome_models(frame, params),
        "dropout": lambda: dropout_models(frame, params),
        "dose-response": lambda: dose_response_tables(frame, params),
        "trajectories": lambda: _trajectories(tables, params, primary_instrument),
        "early-change sensitivity": lambda: Results(
            {
                "early_change_sensitivity": early_change_sensitivity(
                    frame, params, plan or AnalysisParams()
                )
            }
        ),
    }
    return {label: run[label] for label in ANALYSES}


def longest_first(labels: Iterable[str]) -> list[str]:
    """``labels`` in the order to start them on parallel workers: the analyses that take
    longest first (``COST_ORDER``, measured at national scale), so that no worker is left
    with a long one at the end; labels not listed keep their order, after those listed."""
    listed = [label for label in COST_ORDER if label in labels]
    return listed + [label for label in labels if label not in COST_ORDER]


def fit_all(
    tables: dict[str, pd.DataFrame],
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    params: ModelsParams,
    primary_instrument: str,
    progress: Callable[[str], None] = lambda _: None,
    plan: AnalysisParams | None = None,
) -> Results:
    """Every analysis of the models stage, one after the other (:func:`analysis_tasks`);
    ``progress`` is told each one's label when it is done."""
    results = Results()
    for label, task in analysis_tasks(
        tables, features, outcomes, params, primary_instrument, plan
    ).items():
        results.extend(task())
        progress(label)
    return results


ANALYSES = (
    "final score",
    "poor outcome",
    "dropout",
    "dose-response",
    "trajectories",
    "early-change sensitivity",
)
"""The models stage's analyses, in order (its progress bar has one step each)."""

COST_ORDER = (
    "trajectories",
    "early-change sensitivity",
    "dropout",
    "poor outcome",
    "final score",
    "clinical significance",
    "dose-response",
)
"""The analyses from the longest to the shortest at 10 million appointments (the stage
log's ``task_seconds`` on two workers, docs/scaling.md: about 100, 48, 38, 32, 15, 7 and
3 s)."""


def _trajectories(
    tables: dict[str, pd.DataFrame], params: ModelsParams, instrument: str
) -> Results:
    try:
        long = trajectory_frame(
            tables["sessions"], tables["measures"], tables["episodes"], instrument, params
        )
    except ModelError as exc:
        card = failed_card(
            catalog.TRAJECTORY_CLIENT,
            TRAJECTORY_FORMULA,
            EXACT_METHOD,
            0,
            str(exc),
        )
        return Results(cards=[card])
    return trajectory_models(long, params)
