"""Cluster-robust errors when clusters are few: CR2 (Bell & McCaffrey 2002), as R's
``clubSandwich::vcovCR(type = "CR2")``, with t(G − 1) reference ("naive-t").

With fewer than about 20–40 clusters the usual sandwich (CR1) is biased downwards and its
normal reference anti-conservative; dropping clustering altogether (HC1 or model-based
errors) is worse. CR2 scales each cluster's residuals by ``(I − H_gg)^{-1/2}``, ``H_gg``
the cluster's block of the hat matrix, which makes the sandwich unbiased under working
independence; intervals and p-values then use t with G − 1 degrees of freedom (Cameron &
Miller 2015, §VI). A GLM is treated as the weighted least squares of its last IRLS step
(working weights), as clubSandwich does. Checked against clubSandwich 0.5.8 on stored rows
(``tests/data/inference/r_cr2.csv``).
"""

from __future__ import annotations

import numpy as np

DENSE_LIMIT = 4000
"""Largest cluster for which a GLM's CR2 adjustment is computed exactly as clubSandwich
(an n_g × n_g eigendecomposition); larger clusters use the working-weights form."""


def cr2_covariance(
    x: np.ndarray, residual: np.ndarray, groups: np.ndarray, variance: np.ndarray | None = None
) -> np.ndarray:
    """CR2 covariance: design ``x`` (n × p), response residuals ``residual``, cluster codes
    ``groups``; ``variance`` the GLM variance function at the fit (μ(1 − μ) for logistic,
    canonical link; None: ordinary least squares).

    Least squares: each cluster's residuals are scaled by ``(I − H_gg)^{-1/2}`` through the
    thin SVD of its block of ``X (X′X)^{-1/2}`` (rank ≤ p), never an n_g × n_g matrix.
    GLM: clubSandwich's adjustment ``A_g = V_g^{1/2} (V_g^{1/2} (V_g − X̃_g M X̃_g′)
    V_g^{1/2})^{-1/2} V_g^{1/2}`` with ``X̃ = V X`` and ``M = (X′VX)^{-1}``, exactly for
    clusters up to ``DENSE_LIMIT`` rows; above it the working-weights form (the least
    squares adjustment on ``V^{1/2} X`` and ``e / V^{1/2}``), which differs by a fraction of
    a percent when ``V`` varies within a cluster."""
    x = np.asarray(x, float)
    e = np.asarray(residual, float)
    v = None if variance is None else np.asarray(variance, float)
    xw = x if v is None else x * np.sqrt(v)[:, None]
    bread = np.linalg.inv(xw.T @ xw)
    vals, vecs = np.linalg.eigh(bread)
    half = vecs @ np.diag(np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    codes = np.unique(groups, return_inverse=True)[1]
    meat = np.zeros_like(bread)
    for g in range(int(codes.max()) + 1):
        at = codes == g
        if v is not None and at.sum() <= DENSE_LIMIT:
            score = _glm_score(x[at], e[at], v[at], bread)
        else:
            root = 1.0 if v is None else np.sqrt(v[at])
            score = _ls_score(xw[at], e[at] / root, half)
        meat += np.outer(score, score)
    return bread @ meat @ bread


def _ls_score(xg: np.ndarray, eg: np.ndarray, half: np.ndarray) -> np.ndarray:
    """``X_g′ (I − H_gg)^{-1/2} e_g`` through the thin SVD of ``X_g (X′X)^{-1/2}``."""
    u, s, _ = np.linalg.svd(xg @ half, full_matrices=False)
    keep = s > 1e-12
    u, s2 = u[:, keep], s[keep] ** 2
    _check_leverage(s2)
    return xg.T @ (eg + u @ ((1 / np.sqrt(1 - s2) - 1) * (u.T @ eg)))


def _glm_score(xg: np.ndarray, eg: np.ndarray, vg: np.ndarray, bread: np.ndarray) -> np.ndarray:
    """clubSandwich's CR2 score of one cluster of a canonical-link GLM."""
    xt = vg[:, None] * xg  # dμ/dη · X
    root = np.sqrt(vg)
    b = root[:, None] * (np.diag(vg) - xt @ bread @ xt.T) * root[None, :]
    w, q = np.linalg.eigh(b)
    _check_leverage(1 - w / np.max(np.abs(w)) if np.any(w <= 0) else np.zeros(1))
    b_inv_half = (q / np.sqrt(w)) @ q.T
    adjusted = root * (b_inv_half @ (root * eg))
    return xg.T @ adjusted  # X̃′ W = X′ for the canonical link


def _check_leverage(s2: np.ndarray) -> None:
    if np.any(s2 >= 1 - 1e-12):
        raise np.linalg.LinAlgError(
            "a cluster's hat-matrix block has an eigenvalue of 1 (a term is estimated "
            "from one cluster alone); CR2 is undefined"
        )
