"""The exact two-level mixed model equals lme4 at its optimum, and its parts are right."""

from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from statsmodels.regression.mixed_linear_model import MixedLMParams

from pipeline.models.lmm import _inverse_logdet, _solve, fit_lmm, group_sums, profiled_deviance

INFERENCE = Path(__file__).resolve().parents[1] / "data" / "inference"
BTHEB = "bdi ~ bdi_pre + time + treatment + drug + length"
CLIENT = "score ~ weeks + alliance_score_within + alliance_score_between"
R_NAMES = {  # lme4's names → patsy's
    "(Intercept)": "Intercept",
    "treatmentBtheB": "treatment[T.BtheB]",
    "drugYes": "drug[T.Yes]",
    "length>6m": "length[T.>6m]",
}
# model → (formula, random effects, group, stored rows); references from
# scripts/lmm_reference.R
CASES = {
    "btheb": (BTHEB, "1", "subject", "stored_btheb"),
    "btheb_slope": (BTHEB, "~time", "subject", "stored_btheb"),
    "client": (CLIENT, "~weeks", "episode_id", "stored_trajectory"),
}


@pytest.fixture
def design(request):
    """model name → (y, X as a frame, Z, group codes) on its stored rows (complete only)."""

    def build(model: str):
        formula, re, group, rows = CASES[model]
        d = request.getfixturevalue(rows).dropna().reset_index(drop=True)
        y, x = patsy.dmatrices(formula, d, return_type="dataframe")
        z = patsy.dmatrix(re, d, return_type="dataframe")
        return y.to_numpy().ravel(), x, z.to_numpy(), pd.factorize(d[group])[0]

    return build


def _reference(model: str, method: str) -> pd.DataFrame:
    r = pd.read_csv(INFERENCE / "r_lmm.csv")
    return r[(r["model"] == model) & (r["method"] == method)]


def _close(ours, theirs, tol: float = 1e-6) -> float:
    """The largest difference relative to max(1, |reference|)."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    gap = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
    assert gap.max() <= tol, (ours, theirs)
    return float(gap.max())


@pytest.mark.parametrize("model", list(CASES))
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_equals_lme4_at_its_optimum_to_1e_6(design, model, method):
    y, x, z, codes = design(model)
    fit = fit_lmm(y, x.to_numpy(), z, codes, reml=method == "REML")
    r = _reference(model, method)
    by = {kind: g.set_index("name")["value"] for kind, g in r.groupby("kind")}
    names = list(x.columns)
    _close(fit.beta, by["estimate"].rename(R_NAMES).reindex(names))
    _close(np.sqrt(np.diag(fit.cov_beta)), by["se"].rename(R_NAMES).reindex(names))
    _close(fit.theta, by["theta"].to_numpy())
    variance = by["variance"].to_numpy()  # lme4: intercept, slope, covariance, residual
    q = z.shape[1]
    ours = [fit.cov_re[0, 0]] if q == 1 else [fit.cov_re[0, 0], fit.cov_re[1, 1], fit.cov_re[0, 1]]
    _close([*ours, fit.sigma2], variance)
    _close(fit.log_likelihood, by["loglik"].iloc[0])
    assert fit.converged and not fit.at_boundary


def test_the_likelihood_is_statsmodels_own_at_the_same_parameters(design, stored_trajectory):
    # statsmodels' optimiser stops up to ~1e-5 from the optimum (and on Beat the Blues with a
    # random slope, ML, at a worse point altogether); its likelihood function, evaluated at
    # our estimates, is an independent check of ours.
    d = stored_trajectory
    y, x, z, codes = design("client")
    for reml in (False, True):
        fit = fit_lmm(y, x.to_numpy(), z, codes, reml=reml)
        model = smf.mixedlm(CLIENT, d, groups=d["episode_id"], re_formula="~weeks")
        model.reml, model.cov_pen, model.fe_pen = reml, None, None  # as fit() sets them
        params = MixedLMParams.from_components(fit.beta, cov_re=fit.cov_re / fit.sigma2)
        assert model.loglike(params, profile_fe=False) == pytest.approx(
            fit.log_likelihood, rel=1e-10
        )


def test_gradient_is_exact(design):
    y, x, z, codes = design("client")
    sums = group_sums(y, x.to_numpy(), z, codes)
    for reml in (False, True):
        for theta in ([1.7, -0.3, 0.2], [0.5, 0.4, 1.1], [2.0, 0.0, 0.05]):
            theta = np.array(theta)
            exact = _solve(theta, sums, reml).gradient
            numeric = optimize.approx_fprime(
                theta, lambda t, r=reml: profiled_deviance(t, sums, r), 1e-6
            )
            np.testing.assert_allclose(exact, numeric, rtol=1e-4, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_block_inverses_and_log_determinants(q, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(7, q, q))
    m = a @ np.swapaxes(a, 1, 2) + np.eye(q)  # G = 7 positive definite q×q
    inv, logdet = _inverse_logdet(np.moveaxis(m, 0, 2))
    np.testing.assert_allclose(np.moveaxis(inv, 2, 0), np.linalg.inv(m), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(m)[1], rtol=1e-10, atol=1e-12)


def test_three_random_effects_fit_through_the_general_path():
    # intercept, slope and curvature per client: q = 3 uses the LAPACK blocks; its fit must
    # still be the optimum (no lower deviance anywhere near it) and agree with statsmodels.
    rng = np.random.default_rng(7)
    n, k = 300, 7
    ids = np.repeat(np.arange(n), k)
    t = np.tile(np.arange(k, dtype=float), n)
    b = rng.multivariate_normal([0, 0, 0], np.diag([4.0, 0.5, 0.02]), n)
    y = 10 + b[ids, 0] + (-1 + b[ids, 1]) * t + b[ids, 2] * t**2 + rng.normal(0, 1, n * k)
    d = pd.DataFrame({"id": ids, "t": t, "t2": t**2, "y": y})
    x = np.column_stack([np.ones(n * k), t])
    z = np.column_stack([np.ones(n * k), t, t**2])
    fit = fit_lmm(y, x, z, ids)
    assert fit.converged
    sums = group_sums(y, x, z, ids)
    here = profiled_deviance(fit.theta, sums)
    for step in np.eye(6) * 1e-4:
        assert profiled_deviance(fit.theta + step, sums) >= here - 1e-9
    sm = smf.mixedlm("y ~ t", d, groups=d["id"], re_formula="~t + t2").fit(reml=False)
    assert sm.llf <= fit.log_likelihood + 1e-6  # never better than the optimum
    np.testing.assert_allclose(fit.beta, sm.fe_params, rtol=1e-4)


def test_row_order_and_group_labels_do_not_matter(design):
    y, x, z, codes = design("client")
    fit = fit_lmm(y, x.to_numpy(), z, codes)
    order = np.random.default_rng(3).permutation(len(y))
    relabel = np.random.default_rng(4).permutation(codes.max() + 1)[codes]
    again = fit_lmm(y[order], x.to_numpy()[order], z[order], relabel[order])
    np.testing.assert_allclose(again.beta, fit.beta, rtol=1e-9)
    np.testing.assert_allclose(again.cov_beta, fit.cov_beta, rtol=1e-7)


def test_a_saddle_at_a_zero_variance_is_escaped(design):
    # On Beat the Blues with a random slope, a gradient method reaches the slope-SD bound
    # (deviance 1870.23, a saddle: the deviance is even in that SD, so its gradient is 0
    # there) while lme4's optimum is inside (1869.81). The line search off the bound must
    # find it.
    y, x, z, codes = design("btheb_slope")
    fit = fit_lmm(y, x.to_numpy(), z, codes)
    assert fit.theta[2] == pytest.approx(0.0921095097, rel=1e-6)
    assert -2 * fit.log_likelihood == pytest.approx(1869.80803749, abs=1e-6)


def test_a_true_zero_variance_stays_at_the_boundary():
    rng = np.random.default_rng(1)
    n, k = 60, 4
    ids = np.repeat(np.arange(n), k)
    t = np.tile(np.arange(k, dtype=float), n)
    y = 10 + np.repeat(rng.normal(0, 2, n), k) - 0.5 * t + rng.normal(0, 1, n * k)
    x = np.column_stack([np.ones(n * k), t])
    fit = fit_lmm(y, x, x, ids)
    assert fit.at_boundary and fit.converged
    # a singular covariance (slope perfectly correlated with intercept), as lme4 reports it
    assert fit.theta[2] == 0.0
    sd = np.sqrt(np.diag(fit.cov_re))
    assert abs(fit.cov_re[0, 1] / (sd[0] * sd[1])) == pytest.approx(1.0)
