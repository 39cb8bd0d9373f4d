"""The worklist: who is scored (open past the landmark only), no leakage from open episodes,
calibration bands by hand, the saved model refused when changed or from another
scikit-learn, the header, and the temporal split's order."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import catalog
from pipeline.config import FeaturesParams, ModelsParams, PredictionParams
from pipeline.models.prediction import temporal_split, temporal_validation
from pipeline.models.worklist import (
    SIGNS,
    WorklistError,
    band_of,
    calibration_bands,
    check_features,
    fit_worklist_model,
    header_lines,
    load_model,
    model_card,
    open_past_landmark,
    read_worklist,
    save_model,
    score_open,
    signs_in_words,
    training_rows,
    worklist_text,
)

FAST = PredictionParams(repeats=1, bootstrap=50, permutation_repeats=1, folds=3, calibration_bins=4)
MODELS = ModelsParams(case_mix=("age_band",))
FEATURES = {"primary_baseline", "attendance_rate", "alliance_mean", "early_change_primary", *SIGNS}
OUTCOME_COLUMNS = {"poor_outcome", "primary_last", "final_score", "in_treatment_at_landmark"}


def small_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """An analysis frame by hand: poor outcome from attendance and early change; a fifth of
    the episodes open (half of them before the landmark)."""
    rng = np.random.default_rng(seed)
    attendance = rng.uniform(0.3, 1, n)
    change = rng.normal(0, 1, n)
    lp = -0.5 - 2.5 * (attendance - 0.65) - 0.9 * change
    poor = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(float)
    ended = rng.random(n) > 0.2
    in_treatment = ended | (rng.random(n) > 0.5)
    flags = {c: (rng.random(n) < 0.3).astype(float) for c in SIGNS}
    flags["flag_no_client_goal"][:5] = np.nan  # not assessed
    frame = pd.DataFrame(
        {
            "episode_id": [f"ep{i:04d}" for i in range(n)],
            "cluster": [f"c:t{i % 12}" for i in range(n)],
            "referral_date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "primary_baseline": rng.normal(16, 4, n),
            "attendance_rate": attendance,
            "alliance_mean": rng.normal(38, 4, n),
            "early_change_primary": change,
            "age_band": rng.choice(["18-25", "26-40", "41-65"], n),
            "ended": ended,
            "in_treatment_at_landmark": in_treatment,
            "poor_outcome": np.where(in_treatment, poor, np.nan),
            "primary_last": rng.normal(10, 5, n),
            "final_score": rng.normal(10, 5, n),
            **flags,
        }
    )
    return frame


def _fit(frame: pd.DataFrame):
    return fit_worklist_model(frame, FEATURES, OUTCOME_COLUMNS, MODELS, FAST)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return small_frame()


@pytest.fixture(scope="module")
def fitted(frame):
    return _fit(frame)


def test_only_open_episodes_past_the_landmark_are_scored(frame, fitted):
    table = score_open(fitted, frame)
    expected = frame.loc[~frame["ended"] & frame["in_treatment_at_landmark"], "episode_id"]
    assert set(table["episode_id"]) == set(expected) and len(table) == len(expected) > 0
    scored = frame.set_index("episode_id").loc[table["episode_id"]]
    assert not scored["ended"].any() and scored["in_treatment_at_landmark"].all()
    assert table.columns[0] == "episode_id" and "client_id" not in table


def test_the_model_learns_from_ended_episodes_only_and_never_reads_open_outcomes(frame, fitted):
    assert fitted.training["n"] == int(training_rows(frame).sum())
    assert fitted.training["n"] == int((frame["ended"] & frame["poor_outcome"].notna()).sum())
    # Open episodes removed entirely: the same model (they are never training rows).
    ended_only = _fit(frame[frame["ended"] | ~open_past_landmark(frame)].reset_index(drop=True))
    open_rows = frame[open_past_landmark(frame)]
    assert np.allclose(
        fitted.pipeline.predict_proba(open_rows[fitted.features])[:, 1],
        ended_only.pipeline.predict_proba(open_rows[fitted.features])[:, 1],
    )
    # Their outcome columns scrambled: the same model and the same worklist.
    scrambled = frame.copy()
    is_open = open_past_landmark(scrambled)
    scrambled.loc[is_open, "poor_outcome"] = 1.0
    scrambled.loc[is_open, ["primary_last", "final_score"]] = -99.0
    again = _fit(scrambled)
    pd.testing.assert_frame_equal(score_open(again, scrambled), score_open(fitted, frame))
    assert not set(fitted.features) & OUTCOME_COLUMNS


def test_an_outcome_column_as_a_feature_is_refused(frame):
    leaky = PredictionParams(**{**FAST.model_dump(), "blocks": {"leak": ("final_score",)}})
    with pytest.raises(Exception, match="leaks the outcome"):
        fit_worklist_model(frame, FEATURES, OUTCOME_COLUMNS, MODELS, leaky)


def test_the_worklist_is_sorted_by_risk_and_says_its_signs_in_words(frame, fitted):
    table = score_open(fitted, frame)
    risk = table["predicted_risk"].to_numpy()
    assert (np.diff(risk) <= 0).all() and ((risk > 0) & (risk < 1)).all()
    row = table.iloc[0]
    flags = frame.set_index("episode_id").loc[row["episode_id"], list(SIGNS)]
    present = [SIGNS[c] for c in SIGNS if flags[c] == 1]
    assert row["n_signs"] == len(present)
    assert row["early_signs"] == ("; ".join(present) or "none")
    assert row["in_words"].startswith("of ended clients with risks like this, ")
    assert row["in_words"].endswith(f"(model's raw risk {row['predicted_risk']:.0%})")


def test_above_max_episodes_the_bands_come_from_a_cluster_sample_and_the_model_from_all():
    frame = small_frame(2400, seed=3)
    full = _fit(frame)
    assert "calibration_sample" not in full.training
    sampled = fit_worklist_model(
        frame, FEATURES, OUTCOME_COLUMNS, MODELS, FAST.model_copy(update={"max_episodes": 600})
    )
    n = int(training_rows(frame).sum())
    assert full.training["n"] == sampled.training["n"] == n
    assert "random sample of whole clusters" in sampled.training["calibration_sample"]
    in_bands = int(sampled.bands["n"].sum())
    assert int(full.bands["n"].sum()) == n and 600 <= in_bands < n
    # The same model either way (every training row); only the bands' sample differs.
    x = frame[[*full.features]].head(50)
    np.testing.assert_allclose(
        sampled.pipeline.predict_proba(x)[:, 1], full.pipeline.predict_proba(x)[:, 1]
    )


def test_signs_in_words_for_every_pattern_of_present_absent_and_missing():
    flags = list(SIGNS)
    rows = np.array(np.meshgrid(*[[0.0, 1.0, np.nan]] * len(flags))).reshape(len(flags), -1).T
    frame = pd.DataFrame(rows, columns=flags, index=np.arange(len(rows)) + 100)
    out = signs_in_words(frame)
    assert out.index.equals(frame.index)
    for i, values in frame.iterrows():
        present = [SIGNS[c] for c in flags if values[c] == 1]
        assert out.loc[i, "early_signs"] == ("; ".join(present) or "none")
        assert out.loc[i, "n_signs"] == len(present)
        assert out.loc[i, "signs_assessed"] == values.notna().sum()
    assert signs_in_words(frame.iloc[:0]).empty
    assert (signs_in_words(frame[[]])["early_signs"] == "none").all()


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_band_observed_share_and_interval_by_hand():
    risk = np.array([0.05, 0.10, 0.20, 0.25, 0.40, 0.50, 0.70, 0.90])
    y = np.array([0, 0, 1, 0, 1, 0, 1, 1])
    bands = calibration_bands(y, risk, 2)
    # Two equal-count bands: the four lowest risks (1 event of 4), the four highest (3 of 4).
    assert bands["n"].tolist() == [4, 4] and bands["events"].tolist() == [1, 3]
    assert bands["observed"].tolist() == [0.25, 0.75]
    assert bands["lower"].tolist() == [0.0, 0.40] and bands["upper"].tolist() == [0.40, 1.0]
    for (_, band), k in zip(bands.iterrows(), (1, 3), strict=True):
        lo, hi = _wilson(k, 4)
        assert band["ci_low"] == pytest.approx(lo) and band["ci_high"] == pytest.approx(hi)
    assert band_of(np.array([0.0, 0.39, 0.40, 0.99, 1.0]), bands).tolist() == [0, 0, 1, 1, 1]


def _saved(tmp_path, fitted):
    card = model_card(fitted, "2025-03-31", MODELS, FAST, FeaturesParams())
    return save_model(fitted, tmp_path, card), tmp_path / catalog.WORKLIST_MODEL


def test_a_saved_model_round_trips_to_identical_predictions(tmp_path, frame, fitted):
    card, path = _saved(tmp_path, fitted)
    assert card["features_numeric"] == fitted.numeric and card["training"]["n"] > 0
    assert card["versions"]["sklearn"] and len(card["sha256"]) == 64
    loaded, loaded_card = load_model(path)
    assert loaded_card == card
    pd.testing.assert_frame_equal(score_open(loaded, frame), score_open(fitted, frame))


def test_a_tampered_model_file_is_refused(tmp_path, fitted):
    _, path = _saved(tmp_path, fitted)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(WorklistError, match=r"sha256 differs.*engage score"):
        load_model(path)


def test_a_model_from_another_sklearn_is_refused(tmp_path, fitted):
    _, path = _saved(tmp_path, fitted)
    card_path = path.with_name(catalog.WORKLIST_MODEL_CARD)
    card = json.loads(card_path.read_text())
    card["versions"]["sklearn"] = "0.0.1"
    card_path.write_text(json.dumps(card))
    with pytest.raises(WorklistError, match=r"scikit-learn 0\.0\.1.*refit"):
        load_model(path)
    with pytest.raises(WorklistError, match="no saved model"):
        load_model(tmp_path / "elsewhere.joblib")


def test_data_without_the_models_features_are_refused(frame, fitted):
    with pytest.raises(WorklistError, match="alliance_mean"):
        check_features(fitted, frame.drop(columns="alliance_mean"))


def test_no_open_episode_past_the_landmark_gives_an_empty_worklist(frame, fitted):
    closed = frame.assign(ended=True)
    table = score_open(fitted, closed)
    assert table.empty and table.columns[0] == "episode_id"


def test_the_worklist_file_opens_with_its_header(tmp_path, frame, fitted):
    card, _ = _saved(tmp_path, fitted)
    table = score_open(fitted, frame)
    text = worklist_text(table, header_lines("2025-03-31", card))
    lines = text.splitlines()
    assert lines[0].startswith(catalog.WORKLIST_MARKER)
    assert "service's own use" in lines[0] and "Not for sharing" in lines[1]
    assert "2025-03-31" in lines[2] and f"{card['training']['n']} ended episodes" in lines[3]
    path = tmp_path / "worklist.csv"
    path.write_text(text)
    back = read_worklist(path)
    assert back["episode_id"].tolist() == table["episode_id"].tolist()


def test_the_temporal_split_trains_on_every_earlier_referral(frame):
    train, split = temporal_split(frame["referral_date"], 0.67)
    dates = frame["referral_date"]
    assert dates[train].max() == split and dates[train].max() < dates[~train].min()
    assert 0.6 < train.mean() < 0.75
    with pytest.raises(Exception, match="no referral after"):
        temporal_split(pd.Series([pd.Timestamp("2024-01-01")] * 5), 0.5)


def test_temporal_validation_counts_its_parts(frame):
    data = frame[frame["poor_outcome"].notna()]
    table, card = temporal_validation(
        data,
        ["primary_baseline"],
        ["age_band"],
        {"attendance": ["attendance_rate"], "small wins": ["early_change_primary"]},
        FAST,
    )
    assert set(table["model"]) == {"baseline (logistic)", "engagement (logistic)"}
    row = table.iloc[0]
    assert row["n_train"] + row["n_test"] == len(data) and row["n_analysed"] == row["n_test"]
    assert row["events_train"] + row["events_test"] == int(data["poor_outcome"].sum())
    auc = table.set_index(["model", "metric"]).loc[("engagement (logistic)", "auc")]
    assert auc["ci_low"] <= auc["estimate"] <= auc["ci_high"] and auc["estimate"] > 0.65
    assert any("ended" in note and "shorter episodes" in note for note in card.notes)


def test_a_saved_model_refuses_features_built_with_other_settings():
    from pipeline.config import FeaturesParams
    from pipeline.models.worklist import WorklistError, check_feature_params

    card = {"params": {"features": FeaturesParams().model_dump(mode="json")}}
    check_feature_params(card, FeaturesParams())  # the same settings: no complaint
    with pytest.raises(WorklistError, match=r"features\.window_days: 42.*this run has 28"):
        check_feature_params(card, FeaturesParams(window_days=28))
