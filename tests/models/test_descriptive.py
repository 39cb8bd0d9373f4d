"""Kaplan–Meier by group and the dose–response curve: hand examples and known truth."""

import numpy as np
import pandas as pd
import pytest

from pipeline.models.descriptive import dose_response, kaplan_meier
from pipeline.models.tidy import ModelError


def test_kaplan_meier_by_hand():
    # Times 1, 2, 3, 4 with the third censored: S = 3/4, then 3/4 * 2/3 = 1/2, then 0.
    d = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1], "g": ["a"] * 4})
    km = kaplan_meier(d, "t", "e", "g")
    assert list(km["time"]) == [1, 2, 4]
    assert km["survival"].tolist() == pytest.approx([0.75, 0.5, 0.0])
    assert list(km["n_at_risk"]) == [4, 3, 1]
    inside = km.dropna(subset=["ci_low"])
    assert (inside["ci_low"] <= inside["survival"]).all()
    assert (inside["survival"] <= inside["ci_high"]).all()


def test_groups_are_separate_curves():
    rng = np.random.default_rng(0)
    n = 400
    g = np.repeat(["0 flags", "2+ flags"], n)
    t = np.concatenate([rng.exponential(100, n), rng.exponential(30, n)])
    km = kaplan_meier(pd.DataFrame({"t": t, "e": 1, "g": g}), "t", "e", "g")
    at_50 = km[km["time"] <= 50].groupby("group")["survival"].last()
    assert at_50["0 flags"] > at_50["2+ flags"]


def test_dose_response_recovers_a_probit_curve():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 21, 5000)
    p = pd.Series(np.log(n)).pipe(lambda x: 1 / 2 * (1 + np.tanh(0.8 * (-0.5 + 0.6 * x))))
    y = (rng.random(5000) < p).astype(float)
    observed, curve = dose_response(pd.Series(n), pd.Series(y))
    assert observed["episodes"].sum() == 5000
    assert curve["share_improved"].is_monotonic_increasing
    assert (curve["ci_low"] <= curve["share_improved"]).all()
    with pytest.raises(ModelError, match="needs improved and not-improved"):
        dose_response(pd.Series(n), pd.Series(np.ones(5000)))
