"""CR2 errors for few clusters against R's clubSandwich 0.5.8 (vcovCR type "CR2",
coef_test "naive-t") on stored synthetic rows with 8 clusters
(``scripts/cr2_reference.R``; R not needed here)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pipeline.models import small_clusters
from pipeline.models.effects import FitOptions, fit_linear, fit_logistic

DATA = Path(__file__).resolve().parents[1] / "data" / "inference"
ROWS = pd.read_csv(DATA / "few_clusters.csv")
R = pd.read_csv(DATA / "r_cr2.csv")


def _r(model: str) -> pd.DataFrame:
    return R[R["model"] == model].assign(term=lambda t: t["term"].replace("(Intercept)", "const"))


def test_cr2_of_least_squares_equals_clubsandwich():
    x = sm.add_constant(ROWS[["x1", "x2"]]).to_numpy()
    fit = sm.OLS(ROWS["y"], x).fit()
    cov = small_clusters.cr2_covariance(x, fit.resid.to_numpy(), ROWS["cluster"].to_numpy())
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), _r("linear")["se_cr2"], rtol=1e-10)


@pytest.mark.parametrize("dense", [True, False])
def test_cr2_of_logistic_equals_clubsandwich(dense, monkeypatch):
    if not dense:  # the working-weights form used for very large clusters
        monkeypatch.setattr(small_clusters, "DENSE_LIMIT", 0)
    x = sm.add_constant(ROWS[["x1", "x2"]]).to_numpy()
    mu = sm.GLM(ROWS["yb"], x, family=sm.families.Binomial()).fit().fittedvalues.to_numpy()
    cov = small_clusters.cr2_covariance(
        x, ROWS["yb"].to_numpy() - mu, ROWS["cluster"].to_numpy(), mu * (1 - mu)
    )
    # R's glm keeps the weights of its last IRLS step: agreement to 1e-6, not 1e-10.
    rel = np.sqrt(np.diag(cov)) / _r("logistic")["se_cr2"].to_numpy() - 1
    assert np.abs(rel).max() < (1e-5 if dense else 2e-2)


@pytest.mark.parametrize(
    ("fitter", "outcome", "model"), [(fit_linear, "y", "linear"), (fit_logistic, "yb", "logistic")]
)
def test_fitters_use_cr2_and_t_on_g_minus_1_df_below_min_clusters(fitter, outcome, model):
    fit = fitter(ROWS, outcome, ["x1", "x2"], "cluster", options=FitOptions(min_clusters=20))
    ref = _r(model).set_index("term")
    ours = fit.coefficients.set_index("term")
    se = np.sqrt(np.diag(fit.cov))
    np.testing.assert_allclose(se, ref.loc[fit.cov.index, "se_cr2"], rtol=1e-5)
    np.testing.assert_allclose(
        ours.loc[["x1", "x2"], "p_value"], ref.loc[["x1", "x2"], "p_naive"], rtol=1e-4
    )
    assert any("t reference on 7 df" in n for n in fit.card.notes)
