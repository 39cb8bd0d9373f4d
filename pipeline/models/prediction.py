"""Predictive validity of early engagement: how well the landmark window predicts poor outcome.

Every model is an sklearn ``Pipeline`` (imputation, scaling and encoding are fitted on the
training folds only), cross-validated with folds grouped by therapist (no therapist is in
both the training and the test fold, so a model cannot learn a therapist's outcome rate and
score it as a prediction), repeated with seeds from params. Out-of-fold predictions are
averaged over repeats; each prediction still comes from models that never saw the episode.
Intervals come from a cluster bootstrap (therapists resampled) of those predictions; the
gain in AUC from adding engagement is a paired difference on the same resamples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from joblib import parallel_config  # type: ignore[import-untyped]  # ships no type information
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.parallel import Parallel, delayed

from pipeline import catalog
from pipeline.config import ModelsParams, PredictionParams
from pipeline.models.analysis import sample_clusters
from pipeline.models.tidy import ModelCard, ModelError, Results, failed_card

OUTCOME = "poor_outcome"
GROUP = "cluster"


@dataclass(frozen=True)
class Workers:
    """Worker processes for independent fits, and the OpenMP threads they share (each of
    ``n`` processes running at once gets ``threads // n``, at least one)."""

    processes: int = 1
    threads: int = 1

    def each(self, running: int) -> int:
        return max(1, self.threads // max(1, running))


SERIAL = Workers()


def fitted_rows(episodes: int, params: PredictionParams) -> int:
    """About how many rows the cross-validated fits see: every episode, or the cluster
    sample above ``params.max_episodes`` (what sizes their threads and workers)."""
    return min(episodes, params.max_episodes or episodes)


@dataclass
class PredictionResult:
    metrics: pd.DataFrame
    """One row per model and metric: estimate, ci_low, ci_high (cluster bootstrap)."""
    gain: pd.DataFrame
    """AUC of baseline + engagement minus baseline only, per learner, with its interval."""
    calibration: pd.DataFrame
    """Binned calibration curve: model, bin, n, mean_predicted, observed."""
    importance: pd.DataFrame
    """Permutation importance by feature block on held-out folds: drop in AUC."""
    predictions: pd.DataFrame
    """Out-of-fold predicted risk per episode and model (for researchers; not for reports)."""
    cards: list[ModelCard]


def check_no_leakage(columns: list[str], allowed: set[str], outcome_columns: set[str]) -> None:
    """Refuse a predictor that is not a landmark-window feature or a baseline covariate; an
    outcome-table column (total sessions, final score, dropout …) is named as a leak."""
    leaks = [c for c in columns if c in outcome_columns and c not in allowed]
    if leaks:
        raise ModelError(
            f"prediction: {', '.join(leaks)} come(s) from the outcome table (measured after the "
            "landmark); predicting with them leaks the outcome. Use window features only."
        )
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ModelError(f"prediction: unknown predictor(s) {', '.join(unknown)}")


def learners(params: PredictionParams) -> dict[str, object]:
    """The two learners (unfitted): L2-penalised logistic regression, gradient boosting."""
    return {
        "logistic": LogisticRegression(C=params.logistic_c, max_iter=2000),
        "boosting": HistGradientBoostingClassifier(
            max_iter=params.boosting_max_iter,
            learning_rate=params.boosting_learning_rate,
            max_leaf_nodes=params.boosting_max_leaf_nodes,
            min_samples_leaf=params.boosting_min_samples_leaf,
            random_state=params.seed,
        ),
    }


def build_pipeline(learner, numeric: list[str], categorical: list[str]) -> Pipeline:
    """Preprocessing fitted inside each training fold, then the learner. Missing numeric
    values: median plus a missing indicator (missingness itself can be informative)."""
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    categorical_steps = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", min_frequency=10, sparse_output=False),
    )
    transformers = [("numeric", numeric_steps, numeric)]
    if categorical:
        transformers.append(("categorical", categorical_steps, categorical))
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("model", clone(learner))])


def _as_model_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]):
    x = frame[numeric].astype(float).copy()
    for c in categorical:
        x[c] = frame[c].astype(object).where(frame[c].notna(), "missing").astype(str)
    return x


def calibration_line(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration intercept (calibration-in-the-large, slope fixed at 1 via an offset) and
    slope (logistic regression of the outcome on the logit of the predicted risk)."""
    lp = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
    binomial = sm.families.Binomial()
    # Near-perfect predictions (a leak) separate the outcome: the line is then degenerate,
    # and the AUC warning on the model card is the message that matters.
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore")
        slope = sm.GLM(y, sm.add_constant(lp), family=binomial).fit().params[1]
        intercept = sm.GLM(y, np.ones_like(lp), family=binomial, offset=lp).fit().params[0]
    return float(intercept), float(slope)


def metric_values(y: np.ndarray, p: np.ndarray, with_calibration: bool = True) -> dict[str, float]:
    out = {
        "auc": roc_auc_score(y, p),
        "average_precision": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
    }
    if with_calibration:
        out["calibration_intercept"], out["calibration_slope"] = calibration_line(y, p)
    return out


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int) -> pd.DataFrame:
    """Observed vs mean predicted risk in equal-count bins of predicted risk, with counts."""
    order = pd.qcut(pd.Series(p).rank(method="first"), bins, labels=False)
    d = pd.DataFrame({"bin": order + 1, "p": p, "y": y})
    return (
        d.groupby("bin")
        .agg(
            n=("y", "size"),
            events=("y", "sum"),
            mean_predicted=("p", "mean"),
            observed=("y", "mean"),
        )
        .reset_index()
    )


def fold_splits(
    y: np.ndarray, groups: np.ndarray, params: PredictionParams
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train rows, test rows) of the repeated grouped CV: folds of whole
    therapists, stratified by outcome, reshuffled with seed ``params.seed + repeat`` (they
    depend on the outcome and the groups only, so every model shares them)."""
    splits = []
    for r in range(params.repeats):
        folds = StratifiedGroupKFold(params.folds, shuffle=True, random_state=params.seed + r)
        for k, (train, test) in enumerate(folds.split(np.zeros(len(y)), y, groups)):
            splits.append((r, k, train, test))
    return splits


def _fold(
    x: pd.DataFrame,
    y: np.ndarray,
    pipeline: Pipeline,
    split: tuple[int, int, np.ndarray, np.ndarray],
    params: PredictionParams,
    blocks: dict[str, list[str]] | None,
) -> tuple[np.ndarray, list[dict]]:
    """One fold: the held-out risks and (if ``blocks``) the drop in held-out AUC when a
    block's columns are permuted together (seeded by repeat and fold)."""
    r, k, train, test = split
    fitted = clone(pipeline).fit(x.iloc[train], y[train])
    risk = fitted.predict_proba(x.iloc[test])[:, 1]
    drops = []
    if blocks:
        rng = np.random.default_rng([params.seed, r, k])
        base = roc_auc_score(y[test], risk)
        for block, columns in blocks.items():
            for _ in range(params.permutation_repeats):
                shuffled = x.iloc[test].copy()
                perm = rng.permutation(len(test))
                shuffled[columns] = shuffled[columns].to_numpy()[perm]
                auc = roc_auc_score(y[test], fitted.predict_proba(shuffled)[:, 1])
                drops.append({"block": block, "repeat": r, "fold": k, "drop": base - auc})
    return risk, drops


def _run_folds(calls: list[tuple], workers: Workers) -> list[tuple[np.ndarray, list[dict]]]:
    """``_fold`` on each argument tuple: here, or side by side in joblib's worker processes
    (``workers``), in the order given either way."""
    processes = min(workers.processes, len(calls))
    if processes <= 1:
        return [_fold(*c) for c in calls]
    # idle_worker_timeout: the workers leave a second after the last fold instead of
    # joblib's 300 s, which a process started by multiprocessing (a scheduler, the
    # benchmarks) would otherwise wait out at its exit
    with parallel_config(
        backend="loky", inner_max_num_threads=workers.each(processes), idle_worker_timeout=1
    ):
        return list(Parallel(n_jobs=processes)(delayed(_fold)(*c) for c in calls))


def _out_of_fold(
    y: np.ndarray,
    params: PredictionParams,
    splits: list[tuple[int, int, np.ndarray, np.ndarray]],
    folds: list[tuple[np.ndarray, list[dict]]],
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    oof = np.zeros((params.repeats, len(y)))
    drops: list[dict] = []
    for (r, _, _, test), (risk, fold_drops) in zip(splits, folds, strict=True):
        oof[r, test] = risk
        drops += fold_drops
    per_repeat = np.array([roc_auc_score(y, oof[r]) for r in range(params.repeats)])
    return oof.mean(axis=0), per_repeat, pd.DataFrame(drops)


def cross_validated(
    x: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    pipeline: Pipeline,
    params: PredictionParams,
    blocks: dict[str, list[str]] | None = None,
    workers: Workers = SERIAL,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Repeated grouped CV (``fold_splits``). Returns the out-of-fold risk averaged over
    repeats, the AUC of each repeat, and (if ``blocks``) the held-out drop in AUC when a
    block's columns are permuted together. The folds are independent: ``workers`` may
    fit them side by side, with the same results."""
    splits = fold_splits(y, groups, params)
    folds = _run_folds([(x, y, pipeline, split, params, blocks) for split in splits], workers)
    return _out_of_fold(y, params, splits, folds)


def replicate_weights(groups: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """A cluster bootstrap as weights: row i of the (replicates × n) result is how many
    times each row's cluster (therapist) was drawn in replicate i, whole clusters drawn with
    replacement. Computing a statistic with these weights is computing it on the resampled
    rows, without building them."""
    codes, uniques = pd.factorize(groups)
    k = len(uniques)
    rng = np.random.default_rng(seed)
    draws = np.stack([np.bincount(rng.integers(0, k, k), minlength=k) for _ in range(replicates)])
    return draws[:, codes].astype(float)


def _levels(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``p`` ascending, and where each run of equal values starts."""
    order = np.argsort(p, kind="stable")
    ps = p[order]
    return order, np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])


def _logistic(
    y: np.ndarray, w: np.ndarray, lp: np.ndarray, slope: bool, iterations: int = 100
) -> np.ndarray:
    """Maximum-likelihood logistic fits, one per row of weights ``w``, by Newton's method
    vectorised over the rows: logit P(y) = a + b·lp (``slope``; returns (a, b)) or
    a + lp (an offset; returns a). Stops when no step exceeds 1e-12."""
    reps = w.shape[0]
    theta = np.zeros((reps, 2)) if slope else np.zeros((reps, 1))
    for _ in range(iterations):
        eta = theta[:, :1] + (theta[:, 1:2] * lp if slope else lp)
        mu = 1.0 / (1.0 + np.exp(-eta))
        r, v = w * (y - mu), w * mu * (1 - mu)
        if slope:
            g = np.stack([r.sum(1), (r * lp).sum(1)], 1)
            h00, h01, h11 = v.sum(1), (v * lp).sum(1), (v * lp * lp).sum(1)
            det = h00 * h11 - h01 * h01
            step = np.stack([h11 * g[:, 0] - h01 * g[:, 1], h00 * g[:, 1] - h01 * g[:, 0]], 1)
            step /= det[:, None]
        else:
            step = (r.sum(1) / v.sum(1))[:, None]
        theta = theta + step
        if not np.isfinite(step).all() or np.abs(step).max() <= 1e-12:
            break
    return theta


def weighted_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """``metric_values`` of the predictions ``p`` under each row of weights ``w``
    (replicates × n; integer weights are row multiplicities), all replicates at once: AUC
    (ties count a half), average precision (sklearn's step-wise definition), Brier score,
    calibration intercept and slope. Equal to ``metric_values`` on the resampled rows."""
    y = y.astype(float)
    order, starts = _levels(p)
    pos = np.add.reduceat((w * y)[:, order], starts, axis=1)  # weight of events per level
    neg = np.add.reduceat((w * (1 - y))[:, order], starts, axis=1)
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    below = np.cumsum(neg, axis=1) - neg
    tp = np.cumsum(pos[:, ::-1], axis=1)  # at or above each level, highest first
    fp = np.cumsum(neg[:, ::-1], axis=1)
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    lp = np.log(clipped / (1 - clipped))
    # a replicate with one outcome class has no AUC (nan; the bootstrap skips it), and a
    # separated one no finite calibration line
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(1) / (n_pos * n_neg)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (pos[:, ::-1] * precision).sum(1) / n_pos
        line = _logistic(y, w, lp, slope=True)
        offset = _logistic(y, w, lp, slope=False)
    brier = (w * (p - y) ** 2).sum(1) / w.sum(1)
    return {
        "auc": auc,
        "average_precision": ap,
        "brier": brier,
        "calibration_intercept": offset[:, 0],
        "calibration_slope": line[:, 1],
    }


def cluster_bootstrap(
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    groups: np.ndarray,
    params: PredictionParams,
) -> pd.DataFrame:
    """Metrics of every model on ``params.bootstrap`` resamples of whole therapists (as
    weights: ``replicate_weights``, ``weighted_metrics``); a resample with a single outcome
    class is skipped."""
    w = replicate_weights(groups, params.bootstrap, params.seed)
    both = ((w * y).sum(1) > 0) & ((w * (1 - y)).sum(1) > 0)
    w, replicate = w[both], np.flatnonzero(both)
    parts = [
        pd.DataFrame({"replicate": replicate, "model": name, **weighted_metrics(y, p, w)})
        for name, p in predictions.items()
    ]
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values(["replicate"], kind="stable")
        .reset_index(drop=True)
    )


def predictive_validity(
    frame: pd.DataFrame,
    baseline: list[str],
    categorical: list[str],
    blocks: dict[str, list[str]],
    params: PredictionParams,
    workers: Workers = SERIAL,
) -> PredictionResult:
    """Baseline-only vs baseline + engagement, for each learner, on the landmark population:
    grouped cross-validation (``_cross_validate_all``), then cluster-bootstrap intervals
    (``_metric_table``, ``_gain_table``), calibration and permutation importance."""
    data = frame[frame[OUTCOME].notna()].reset_index(drop=True)
    if data[OUTCOME].nunique() < 2:
        raise ModelError("prediction: the outcome takes a single value; nothing to predict")
    n_groups = data[GROUP].nunique()
    if n_groups < params.folds:
        raise ModelError(
            f"prediction: {n_groups} therapist(s) for {params.folds} grouped folds; lower "
            "prediction.folds or pool sites"
        )
    y = data[OUTCOME].to_numpy(int)
    groups = data[GROUP].to_numpy()
    cv = _cross_validate_all(data, y, groups, baseline, categorical, blocks, params, workers)
    for card in cv.cards:
        card.n_input, card.n_groups = len(frame), int(n_groups)
    boot = cluster_bootstrap(y, cv.oof, groups, params)
    _warn_implausible(cv.cards, y, cv.oof, params)
    calibration = pd.concat(
        [
            calibration_curve(y, p, params.calibration_bins).assign(model=name)
            for name, p in cv.oof.items()
        ],
        ignore_index=True,
    )[["model", "bin", "n", "events", "mean_predicted", "observed"]]
    importance = (
        pd.concat(cv.drops)
        .groupby(["model", "block"], sort=False)["drop"]
        .agg(auc_drop="mean", sd="std", evaluations="size")
        .reset_index()
    )
    predictions = pd.DataFrame({"episode_id": data["episode_id"], **cv.oof})
    return PredictionResult(
        _metric_table(y, cv.oof, boot, len(data)),
        _gain_table(y, cv.oof, boot, params),
        calibration,
        importance,
        predictions,
        cv.cards,
    )


@dataclass
class _CrossValidated:
    """Out-of-fold predictions per model, permutation drops and one card per model."""

    oof: dict[str, np.ndarray]
    drops: list[pd.DataFrame]
    cards: list[ModelCard]


def _cross_validate_all(
    data: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    baseline: list[str],
    categorical: list[str],
    blocks: dict[str, list[str]],
    params: PredictionParams,
    workers: Workers = SERIAL,
) -> _CrossValidated:
    """Each learner on the baseline set and on baseline + engagement, cross-validated by
    therapist (permutation importance by block for the engagement sets). The four are
    independent: with ``workers.processes`` > 1 they run side by side in joblib's worker
    processes (sharing ``workers.threads`` OpenMP threads), with the same results."""
    numeric = [*baseline, *(c for cols in blocks.values() for c in cols)]
    x = _as_model_input(data, numeric, categorical)
    sets = {"baseline": [*baseline], "engagement": numeric}
    jobs = [
        (f"{set_name} ({learner_name})", learner, columns, set_name == "engagement")
        for learner_name, learner in learners(params).items()
        for set_name, columns in sets.items()
    ]
    # every fold of every model, side by side: the folds of one model alone are too
    # few, and too unequal between models, to keep the workers busy
    splits = fold_splits(y, groups, params)
    models = [
        (x[[*columns, *categorical]], build_pipeline(learner, columns, categorical), permute)
        for _, learner, columns, permute in jobs
    ]  # one copy of each model's columns, shared by its folds
    calls = [
        (xj, y, pipe, split, params, blocks if permute else None)
        for xj, pipe, permute in models
        for split in splits
    ]
    folds = _run_folds(calls, workers)
    per_model = len(splits)
    done = [
        _out_of_fold(y, params, splits, folds[i * per_model : (i + 1) * per_model])
        for i in range(len(jobs))
    ]
    out = _CrossValidated({}, [], [])
    for (name, learner, columns, _), (p, repeats, d) in zip(jobs, done, strict=True):
        out.oof[name] = p
        if not d.empty:
            out.drops.append(d.assign(model=name))
        out.cards.append(_card(name, learner, [*columns, *categorical], repeats, params))
        out.cards[-1].n_analysed = len(data)
    return out


def _card(
    name: str, learner: object, columns: list[str], repeats: np.ndarray, params: PredictionParams
) -> ModelCard:
    """The card of one cross-validated model (counts are filled in by the caller)."""
    return ModelCard(
        model=catalog.model_id(catalog.PREDICTION, name),
        formula=f"{OUTCOME} ~ {' + '.join(columns)}",
        method=(
            f"sklearn Pipeline ({type(learner).__name__}); {params.folds}-fold "
            f"CV grouped by therapist, {params.repeats} repeats"
        ),
        n_input=0,
        n_analysed=0,
        n_groups=0,
        notes=[
            "AUC per repeat: " + ", ".join(f"{a:.3f}" for a in repeats),
            "missing predictor values imputed inside the training folds "
            "(median + missing indicator)",
        ],
    )


def _metric_table(
    y: np.ndarray, oof: dict[str, np.ndarray], boot: pd.DataFrame, n: int
) -> pd.DataFrame:
    """Every metric of every model with its cluster-bootstrap percentile interval."""
    rows = []
    for name, p in oof.items():
        b = boot[boot["model"] == name]
        for metric, value in metric_values(y, p).items():
            sample = b[metric].dropna()
            rows.append(
                {
                    "model": name,
                    "metric": metric,
                    "estimate": value,
                    "ci_low": float(np.quantile(sample, 0.025)),
                    "ci_high": float(np.quantile(sample, 0.975)),
                    "n_analysed": n,
                }
            )
    return pd.DataFrame(rows)


def _gain_table(
    y: np.ndarray, oof: dict[str, np.ndarray], boot: pd.DataFrame, params: PredictionParams
) -> pd.DataFrame:
    """Per learner: AUC without and with the window, and the gain with a paired
    bootstrap interval."""
    gains = []
    paired = boot.pivot_table(index="replicate", columns="model", values="auc")
    for learner_name in learners(params):
        e, base = f"engagement ({learner_name})", f"baseline ({learner_name})"
        diff = paired[e] - paired[base]
        gains.append(
            {
                "learner": learner_name,
                "auc_baseline": roc_auc_score(y, oof[base]),
                "auc_engagement": roc_auc_score(y, oof[e]),
                "auc_gain": roc_auc_score(y, oof[e]) - roc_auc_score(y, oof[base]),
                "ci_low": float(np.quantile(diff, 0.025)),
                "ci_high": float(np.quantile(diff, 0.975)),
            }
        )
    return pd.DataFrame(gains)


def _warn_implausible(
    cards: list[ModelCard], y: np.ndarray, oof: dict[str, np.ndarray], params: PredictionParams
) -> None:
    """A warning on each card whose cross-validated AUC is implausibly high."""
    for card in cards:
        auc = roc_auc_score(y, oof[card.model.removeprefix("prediction: ")])
        if auc > params.plausible_auc_max:
            card.warnings.append(
                f"cross-validated AUC {auc:.2f} is above {params.plausible_auc_max:.2f}, "
                "implausibly high for early-window data (published: about 0.60–0.75); "
                "check the predictors for leakage from after the landmark"
            )


# Headline figures for reports/metrics.json (stable names; the logistic learner).
HEADLINE = "logistic"


def model_columns(
    frame: pd.DataFrame, models: ModelsParams, params: PredictionParams
) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The predictors this export has: baseline, case mix (categorical) and the feature
    blocks, each column recorded for someone (an absent block is dropped)."""
    categorical = [c for c in models.case_mix if c in frame and frame[c].notna().any()]
    baseline = [c for c in params.baseline if c in frame]
    blocks = {
        b: [c for c in cols if c in frame and frame[c].notna().any()]
        for b, cols in params.blocks.items()
    }
    return baseline, categorical, {b: cols for b, cols in blocks.items() if cols}


def checked_columns(
    frame: pd.DataFrame,
    features_columns: set[str],
    outcome_columns: set[str],
    models: ModelsParams,
    params: PredictionParams,
) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``model_columns`` after the leakage guard (``check_no_leakage``)."""
    baseline, categorical, blocks = model_columns(frame, models, params)
    check_no_leakage(
        [c for cols in blocks.values() for c in cols] + baseline,
        features_columns | set(params.baseline),
        outcome_columns,
    )
    return baseline, categorical, blocks


def engagement_model(
    params: PredictionParams, numeric: list[str], categorical: list[str]
) -> Pipeline:
    """The headline model, unfitted: ``build_pipeline`` with the logistic learner."""
    return build_pipeline(learners(params)[HEADLINE], numeric, categorical)


# --- temporal validation -------------------------------------------------------------------

DATE = "referral_date"
TEMPORAL_NOTE = (
    "the test part holds the later referrals whose outcome was defined by the extract "
    "date: mostly episodes that had ended by then, so shorter episodes are over-represented "
    "among them (censoring), and the figures may not hold for the longer ones"
)


def temporal_split(dates: pd.Series, train_share: float) -> tuple[np.ndarray, pd.Timestamp]:
    """Training rows (True) and the split date: the referrals up to the ``train_share``
    quantile of ``dates`` train, the later ones test, so that every training referral is
    before every test referral (ties on the split date all train)."""
    d = pd.to_datetime(dates).to_numpy()
    if np.isnat(d).any():
        raise ModelError("prediction: temporal validation needs every referral date")
    ordered = np.sort(d)
    split = ordered[max(int(np.ceil(train_share * len(d))) - 1, 0)]
    train = d <= split
    if train.all():
        raise ModelError(
            "prediction: temporal validation has no referral after the split date "
            f"{pd.Timestamp(split).date()}; lower prediction.temporal_train_share"
        )
    return train, pd.Timestamp(split)


def temporal_validation(
    data: pd.DataFrame,
    baseline: list[str],
    categorical: list[str],
    blocks: dict[str, list[str]],
    params: PredictionParams,
) -> tuple[pd.DataFrame, ModelCard]:
    """The logistic models (baseline only, and with the window) fitted on the earlier
    referrals and tested on the later ones (``temporal_split``): every metric with a
    cluster-bootstrap interval over the test part's therapists, the counts of each part
    and the split date; and the card of the engagement model."""
    data = data[data[OUTCOME].notna()].reset_index(drop=True)
    train, split = temporal_split(data[DATE], params.temporal_train_share)
    y = data[OUTCOME].to_numpy(int)
    if len(np.unique(y[train])) < 2 or len(np.unique(y[~train])) < 2:
        raise ModelError("prediction: a temporal part has a single outcome value")
    numeric = [*baseline, *(c for cols in blocks.values() for c in cols)]
    x = _as_model_input(data, numeric, categorical)
    test = {}
    for set_name, columns in (("baseline", [*baseline]), ("engagement", numeric)):
        fitted = engagement_model(params, columns, categorical).fit(
            x.loc[train, [*columns, *categorical]], y[train]
        )
        test[f"{set_name} ({HEADLINE})"] = fitted.predict_proba(
            x.loc[~train, [*columns, *categorical]]
        )[:, 1]
    y_test, groups = y[~train], data.loc[~train, GROUP].to_numpy()
    boot = cluster_bootstrap(y_test, test, groups, params)
    table = _metric_table(y_test, test, boot, len(y_test)).assign(
        n_train=int(train.sum()),
        events_train=int(y[train].sum()),
        n_test=len(y_test),
        events_test=int(y_test.sum()),
        split_date=split.date().isoformat(),
    )
    name = f"engagement ({HEADLINE}), temporal"
    card = ModelCard(
        model=catalog.model_id(catalog.PREDICTION, name),
        formula=f"{OUTCOME} ~ {' + '.join([*numeric, *categorical])}",
        method=(
            "sklearn Pipeline (LogisticRegression) fitted on the referrals up to "
            f"{split.date()} (the first {params.temporal_train_share:.0%} with a defined "
            "outcome), tested on the later ones"
        ),
        n_input=len(data),
        n_analysed=len(y_test),
        n_groups=int(pd.Series(groups).nunique()),
        # No date or count in the notes: shared cards' notes have their numbers rounded.
        notes=[
            "the counts of the training and the test part are in table prediction_temporal",
            TEMPORAL_NOTE,
        ],
    )
    return table, card


def prediction_results(
    frame: pd.DataFrame,
    features_columns: set[str],
    outcome_columns: set[str],
    models: ModelsParams,
    params: PredictionParams,
    workers: Workers = SERIAL,
) -> tuple[Results, pd.DataFrame | None, dict]:
    """Run ``predictive_validity`` with the leakage guard (on a random sample of whole
    clusters above ``params.max_episodes``) and the temporal validation; return the tables
    and cards, the out-of-fold predictions, and the headline metrics."""
    frame, sampled = sample_clusters(
        frame, params.max_episodes, params.seed, "prediction.max_episodes"
    )
    try:
        baseline, categorical, blocks = checked_columns(
            frame, features_columns, outcome_columns, models, params
        )
        r = predictive_validity(frame, baseline, categorical, blocks, params, workers)
    except ModelError as exc:
        card = failed_card(catalog.PREDICTION, OUTCOME, "sklearn", len(frame), str(exc))
        return Results(cards=[card]), None, {}
    tables = {
        "prediction_metrics": r.metrics,
        "prediction_gain": r.gain,
        "prediction_calibration": r.calibration,
        "prediction_importance": r.importance,
    }
    cards = list(r.cards)
    temporal = None
    try:
        if DATE not in frame:
            raise ModelError("prediction: no referral date in the analysis frame")
        temporal, card = temporal_validation(frame, baseline, categorical, blocks, params)
        tables["prediction_temporal"] = temporal
        cards.append(card)
    except ModelError as exc:
        name = catalog.model_id(catalog.PREDICTION, f"engagement ({HEADLINE}), temporal")
        cards.append(failed_card(name, OUTCOME, "sklearn", len(frame), str(exc)))
    if sampled:
        for card in cards:
            card.notes.append(sampled)
    return Results(tables, cards), r.predictions, headline_figures(r.metrics, r.gain, temporal)


def headline_figures(
    metrics: pd.DataFrame, gain: pd.DataFrame, temporal: pd.DataFrame | None = None
) -> dict[str, float]:
    """The prediction figures ``reports/metrics.json`` carries: AUC without and with the
    window (headline learner) and the gain, with intervals; Brier, calibration and
    average precision with the window; the boosting learner's AUC; and, when the temporal
    validation ran, its AUC with interval, Brier and calibration (``*_temporal``)."""
    est: dict[tuple[str, str], tuple[float, float, float]] = {
        (str(model), str(metric)): (float(e), float(lo), float(hi))
        for model, metric, e, lo, hi in metrics[
            ["model", "metric", "estimate", "ci_low", "ci_high"]
        ].itertuples(index=False, name=None)
    }
    out: dict[str, float] = {}
    for name, model in (("auc_baseline", "baseline"), ("auc_engagement", "engagement")):
        e, lo, hi = est[(f"{model} ({HEADLINE})", "auc")]
        out |= {name: e, f"{name}_ci_low": lo, f"{name}_ci_high": hi}
    g = {str(k): v for k, v in gain[gain["learner"] == HEADLINE].iloc[0].to_dict().items()}
    out |= {
        "auc_gain": float(g["auc_gain"]),
        "auc_gain_ci_low": float(g["ci_low"]),
        "auc_gain_ci_high": float(g["ci_high"]),
    }
    for metric in ("brier", "calibration_slope", "calibration_intercept", "average_precision"):
        out[f"{metric}_engagement"] = est[(f"engagement ({HEADLINE})", metric)][0]
    out["auc_engagement_boosting"] = est[("engagement (boosting)", "auc")][0]
    if temporal is not None:
        t = {
            str(metric): (float(e), float(lo), float(hi))
            for model, metric, e, lo, hi in temporal[
                ["model", "metric", "estimate", "ci_low", "ci_high"]
            ].itertuples(index=False, name=None)
            if model == f"engagement ({HEADLINE})"
        }
        e, lo, hi = t["auc"]
        out |= {"auc_temporal": e, "auc_temporal_ci_low": lo, "auc_temporal_ci_high": hi}
        for metric in ("brier", "calibration_intercept", "calibration_slope"):
            out[f"{metric}_temporal"] = t[metric][0]
    return out
