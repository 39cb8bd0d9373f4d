"""The trajectory code path reproduces a published analysis, and fails clearly."""

import numpy as np
import pandas as pd
import pytest

from pipeline.models.replication import (
    BTHEB_FORMULA,
    BTHEB_PUBLISHED,
    as_printed,
    btheb_long,
    btheb_reproduction,
)
from pipeline.models.tidy import ModelError
from pipeline.models.trajectories import fit_trajectory, person_mean_centre


@pytest.fixture(scope="module")
def btheb():
    return btheb_long()


def test_as_printed_rounds_to_the_printed_decimals_trailing_zeros_included():
    assert as_printed(5.943675, "5.94") == 5.94
    assert as_printed(0.2563, "0.256") == 0.256
    assert as_printed(-2.3749, "-2.37") == -2.37
    assert as_printed(-2.376, "-2.37") == -2.38  # one digit further off: no match
    assert as_printed(-2.7978, "-2.80") == -2.80
    assert as_printed(-2.7478, "-2.80") == -2.75  # would pass at one decimal; not at two
    assert as_printed(7.04, "7") == 7.0


def test_beat_the_blues_published_fixed_effects_and_sds(btheb):
    fit = fit_trajectory(btheb, BTHEB_FORMULA, "subject", model="btheb")
    table = btheb_reproduction(fit)
    assert set(table.index) == set(BTHEB_PUBLISHED)  # every published figure is checked
    assert table["matches"].all(), table
    assert (table["as_printed"] == pd.Series(BTHEB_PUBLISHED)).all()
    assert fit.card.converged and fit.card.n_groups == 97
    assert fit.card.n_analysed == 280 and fit.card.n_input == 400  # 120 missed visits


def test_person_mean_centring_by_hand():
    df = pd.DataFrame({"id": ["a", "a", "b", "b"], "x": [1.0, 3.0, 10.0, 14.0]})
    out = person_mean_centre(df, "x", "id")
    assert list(out["x_within"]) == [-1.0, 1.0, -2.0, 2.0]
    assert list(out["x_between"]) == [-5.0, -5.0, 5.0, 5.0]  # person means 2 and 12, grand 7


def test_one_group_or_a_constant_column_fails_clearly(btheb):
    one = btheb.assign(subject=1)
    with pytest.raises(ModelError, match="one subject"):
        fit_trajectory(one, BTHEB_FORMULA, "subject")
    constant = btheb.assign(bdi_pre=20)
    with pytest.raises(ModelError, match="single value"):
        fit_trajectory(constant, BTHEB_FORMULA, "subject")
    with pytest.raises(ModelError, match="not in the data"):
        fit_trajectory(btheb, "bdi ~ nonexistent", "subject")


def test_boundary_random_slope_is_flagged_and_cross_checked():
    # No slope variance in the data: the MLE of the slope variance sits at the boundary.
    rng = np.random.default_rng(1)
    n, k = 60, 4
    df = pd.DataFrame({"id": np.repeat(np.arange(n), k), "t": np.tile(np.arange(k), n)})
    df["y"] = 10 + np.repeat(rng.normal(0, 2, n), k) - 0.5 * df["t"] + rng.normal(0, 1, n * k)
    fit = fit_trajectory(df, "y ~ t", "id", re_formula="~t", model="no slope variance")
    notes = " ".join(fit.card.notes)
    assert "boundary" in notes and "without the boundary term" in notes
    assert any("boundary" in w for w in fit.card.warnings)  # statsmodels' own warning kept
    assert fit.coefficients.set_index("term").loc["t", "estimate"] == pytest.approx(-0.5, abs=0.1)
    # With real slope variance nothing is flagged.
    df["y"] += df["t"] * np.repeat(rng.normal(0, 1.5, n), k)
    clean = fit_trajectory(df, "y ~ t", "id", re_formula="~t")
    assert not any("boundary" in note for note in clean.card.notes)


def test_random_intercept_slope_sds_and_correlation_are_recovered():
    rng = np.random.default_rng(4)
    n, k = 800, 6
    cov = [[4.0**2, -0.5 * 4.0 * 0.8], [-0.5 * 4.0 * 0.8, 0.8**2]]
    b = rng.multivariate_normal([0, 0], cov, n)
    t = np.tile(np.arange(k, dtype=float), n)
    ids = np.repeat(np.arange(n), k)
    y = 15 + b[ids, 0] + (-1 + b[ids, 1]) * t + rng.normal(0, 1.5, n * k)
    fit = fit_trajectory(pd.DataFrame({"id": ids, "t": t, "y": y}), "y ~ t", "id", "~t")
    v = fit.variance.set_index("component")
    assert v.loc["id: intercept", "sd"] == pytest.approx(4.0, rel=0.1)
    assert v.loc["id: t", "sd"] == pytest.approx(0.8, rel=0.1)
    assert v.loc["residual", "sd"] == pytest.approx(1.5, rel=0.1)
    assert v.loc["id: corr(intercept, t)", "correlation"] == pytest.approx(-0.5, abs=0.1)
