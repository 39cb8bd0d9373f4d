"""Cox model inference that matches R's ``survival`` package: Efron-consistent score
residuals (and so ``coxph(..., cluster=)``'s robust variance) and the Grambsch–Therneau
proportional-hazards test of ``cox.zph``, both vectorised over failure times.

statsmodels' ``PHReg`` fits the Efron partial likelihood exactly (estimates equal R's to
1e-9), but its ``score_residuals`` always use the Breslow form, so robust errors of an
Efron fit come out 0.2–1% too small when times are tied (tested against R on UIS and on a
synthetic dropout model: ``tests/data/inference``). The quantities here are those of
Therneau & Grambsch, *Modeling Survival Data* (2000), §3.7 (Efron approximation) and §6.2
(the score test for ``β(t) = β + θ·g(t)``), as implemented in ``survival`` 3.x.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy import sparse, stats
from statsmodels.base.model import LikelihoodModel
from statsmodels.duration.hazard_regression import PHReg, PHSurvivalTime

from pipeline.models.tidy import design_rank

PH_TRANSFORMS = ("km", "identity", "rank", "log")


@dataclass(frozen=True)
class _Layout:
    """What one stratum's risk sets are, whatever the parameters: built once per model."""

    failed: np.ndarray  # bool per row
    k_in: np.ndarray  # row at risk at failure times k_in <= i < k_out
    k_out: np.ndarray
    where: np.ndarray  # failure-time index of each failed row (row order)
    time_of: np.ndarray  # failure-time index of each sub-failure
    frac: np.ndarray  # k/d of each sub-failure
    change: sparse.csr_matrix  # (failure times + 1) × rows: +1 at k_out, −1 at k_in
    n_times: int

    @classmethod
    def build(cls, model: PHReg, stx: int) -> _Layout:
        surv = model.surv
        t = surv.time_s[stx]
        failed = surv.status_s[stx] == 1
        uft = surv.ufailt[stx]
        n = len(uft)
        # statsmodels' convention: at risk from the first failure time >= entry.
        k_out = np.searchsorted(uft, t, "right")
        k_in = np.searchsorted(uft, surv.entry_s[stx], "left")
        where = np.searchsorted(uft, t[failed])
        time_of = np.sort(where, kind="stable")
        d = np.bincount(time_of, minlength=n)
        first = np.concatenate([[0], np.cumsum(d)[:-1]])
        if model.ties == "efron":
            frac = (np.arange(len(time_of)) - first[time_of]) / d[time_of]
        else:
            frac = np.zeros(len(time_of))
        rows = np.arange(len(t))
        change = sparse.csr_matrix(
            (
                np.repeat([1.0, -1.0], len(t)),
                (np.concatenate([k_out, k_in]), np.concatenate([rows, rows])),
            ),
            shape=(n + 1, len(t)),
        )
        return cls(failed, k_in, k_out, where, time_of, frac, change, n)

    def at_risk_sums(self, values: np.ndarray) -> np.ndarray:
        """For each failure time, the sums of ``values`` (rows × columns) over the rows at
        risk then: all columns in one sparse product, then cumulative sums backwards."""
        per = self.change @ values
        return np.cumsum(per[::-1], axis=0)[::-1][1:]


def _layout(model: PHReg, stx: int) -> _Layout:
    """The stratum's ``_Layout``, built on first use and kept on the model."""
    cache = model.__dict__.setdefault("_risk_layouts", {})
    if stx not in cache:
        cache[stx] = _Layout.build(model, stx)
    return cache[stx]


def _risk_sets(model: PHReg, params) -> list[_RiskSets]:
    """Every stratum's risk sets at ``params``; the last parameters' are kept on the model
    (as its layouts are), since Newton's method asks for the likelihood, score and Hessian
    at one point, and the robust errors and PH test at the fitted one."""
    params = np.asarray(params, float)
    key = params.tobytes()
    cached = model.__dict__.get("_risk_sets_at")
    if cached is None or cached[0] != key:
        cached = (key, [_RiskSets.of(model, params, stx) for stx in range(model.surv.nstrat)])
        model.__dict__["_risk_sets_at"] = cached
    return cached[1]


def _bincount_columns(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount`` of each column of ``values`` by ``index`` (``n`` bins)."""
    return np.column_stack([np.bincount(index, values[:, c], n) for c in range(values.shape[1])])


def _cumulative(per_time: np.ndarray) -> np.ndarray:
    """Cumulative sums over failure times with a leading zero row, so that
    ``c[k_out] - c[k_in]`` is the sum over the times a row is at risk at."""
    zero = np.zeros((1, *per_time.shape[1:]))
    return np.concatenate([zero, np.cumsum(per_time, axis=0)])


@dataclass(frozen=True)
class _RiskSets(_Layout):
    """One stratum's risk sets at the fitted linear predictor, with the tied failures at
    each time taken one at a time (k = 0..d−1) as in Efron's approximation.

    Rows are the stratum's subjects; "sub-failures" are the failures sorted by time, one
    per term of the Efron sum (all with ``frac`` 0 under Breslow ties)."""

    x: np.ndarray  # covariates (rows × p)
    lp: np.ndarray  # linear predictor − its max
    e: np.ndarray  # exp(lp)
    denom: np.ndarray  # S0 − (k/d)·D0
    xbar: np.ndarray  # (S1 − (k/d)·D1) / denom, sub-failures × p

    @classmethod
    def of(cls, model: PHReg, params: np.ndarray, stx: int) -> _RiskSets:
        surv = model.surv
        layout = _layout(model, stx)
        x, failed, n = surv.exog_s[stx], layout.failed, layout.n_times
        lp = x @ params
        if surv.offset_s is not None:
            lp = lp + surv.offset_s[stx]
        lp = lp - lp.max()
        e = np.exp(lp)
        ex = e[:, None] * x
        sums = layout.at_risk_sums(np.column_stack([e, ex]))
        s0, s1 = sums[:, 0], sums[:, 1:]
        where, time_of, frac = layout.where, layout.time_of, layout.frac
        d0 = np.bincount(where, e[failed], minlength=n)
        d1 = _bincount_columns(where, ex[failed], n)
        denom = s0[time_of] - frac * d0[time_of]
        xbar = (s1[time_of] - frac[:, None] * d1[time_of]) / denom[:, None]
        shared = {f.name: getattr(layout, f.name) for f in fields(_Layout)}
        return cls(**shared, x=x, lp=lp, e=e, denom=denom, xbar=xbar)

    def per_time(self, values: np.ndarray) -> np.ndarray:
        """Sum of per-sub-failure ``values`` (1-D or 2-D) at each failure time."""
        if values.ndim == 1:
            return np.bincount(self.time_of, values, self.n_times)
        return _bincount_columns(self.time_of, values, self.n_times)

    def over_risk(self, per_time: np.ndarray) -> np.ndarray:
        """For each row, the sum of ``per_time`` over the failure times it is at risk at."""
        c = _cumulative(per_time)
        return c[self.k_out] - c[self.k_in]

    def log_likelihood(self) -> float:
        """The stratum's log partial likelihood (Efron's or Breslow's, by ``frac``)."""
        return float(self.lp[self.failed].sum() - np.log(self.denom).sum())

    def score(self) -> np.ndarray:
        """The stratum's score: each failure's x minus its risk-set mean."""
        return self.x[self.failed].sum(0) - self.xbar.sum(0)

    def information(self, g: np.ndarray | None = None) -> np.ndarray:
        """Σ over sub-failures of ``g`` (default 1) times the risk-set covariance of x,
        S2/denom − x̄x̄ᵀ, with S2 weighting the tied failures by 1 − k/d: the observed
        information (minus the Hessian of ``log_likelihood``) when g is 1. One weighted
        cross-product over the rows, where statsmodels forms a p×p product per failure
        time in Python."""
        g = np.ones(len(self.denom)) if g is None else g
        w = g / self.denom
        row_w = self.e * self.over_risk(self.per_time(w))
        row_w[self.failed] -= self.e[self.failed] * self.per_time(w * self.frac)[self.where]
        return self.x.T @ (row_w[:, None] * self.x) - self.xbar.T @ (g[:, None] * self.xbar)

    def schoenfeld_sums(self) -> np.ndarray:
        """At each failure time, the sum over its failures of x minus the sum over k of the
        risk-set means: the time's contribution to the score (failure times × p)."""
        failed_x = _bincount_columns(self.where, self.x[self.failed], self.n_times)
        return failed_x - self.per_time(self.xbar)


def _grouped(keys: np.ndarray, n: int) -> list[np.ndarray]:
    """Positions of each key 0..n-1 in ``keys``, in their order (int32, as statsmodels)."""
    order = np.argsort(keys, kind="stable").astype(np.int32)
    return np.split(order, np.cumsum(np.bincount(keys, minlength=n))[:-1])


class SurvivalTimes(PHSurvivalTime):
    """statsmodels' ``PHSurvivalTime`` (strata, risk sets at each failure time) built with
    vectorised operations: the original visits every subject in a Python loop (about two
    seconds per model per million subjects, twice over). The same attributes, equal element
    by element (``tests/models/test_cox.py``)."""

    def __init__(self, time, status, exog, strata=None, entry=None, offset=None):
        time, status = np.asarray(time, float), np.asarray(status)
        strata = np.zeros(len(time), dtype=np.int32) if strata is None else np.asarray(strata)
        entry = np.zeros(len(time)) if entry is None else np.asarray(entry, float)
        if not len(time) == len(status) == len(strata) == len(entry):
            raise ValueError("endog, status, strata, and entry must all have the same length")
        if time.min() < 0:
            raise ValueError("endog must be non-negative")
        if entry.min() < 0:
            raise ValueError("entry time must be non-negative")
        if np.any(entry > time):
            raise ValueError("entry times may not occur after event or censoring times")
        stu, codes = np.unique(strata, return_inverse=True)
        rows = _grouped(codes, len(stu))
        keep = [i for i, ix in enumerate(rows) if status[ix].sum() > 0]
        self.nstrat_orig = len(rows)
        self.nstrat = len(keep)
        self.stratum_names = [stu[i] for i in keep]
        self.stratum_rows = []
        for i in keep:
            ix = rows[i]
            failures = time[ix][status[ix] == 1]
            ix = ix[entry[ix] <= failures.max()]  # entered before the last failure
            ix = ix[time[ix] >= failures.min()]  # not censored before the first
            self.stratum_rows.append(ix[np.argsort(time[ix])])  # statsmodels' sort
        self.offset_s = None if offset is None else self._split(np.asarray(offset))
        self.n_obs = sum(len(ix) for ix in self.stratum_rows)
        self.time_s = self._split(time)
        self.exog_s = self._split(np.asarray(exog))
        self.status_s = self._split(status)
        self.entry_s = self._split(entry)
        self.ufailt_ix, self.risk_enter, self.risk_exit, self.ufailt = [], [], [], []
        for t, st, en in zip(self.time_s, self.status_s, self.entry_s, strict=True):
            failed = np.flatnonzero(st == 1).astype(np.int32)
            uft = np.unique(t[failed])
            n = len(uft)
            at = np.searchsorted(uft, t[failed])
            self.ufailt_ix.append([failed[g] for g in _grouped(at, n)])
            last = np.searchsorted(uft, t, "right") - 1  # enters (backwards in time) here
            inside = np.flatnonzero(last >= 0).astype(np.int32)
            self.risk_enter.append([inside[g] for g in _grouped(last[inside], n)])
            self.risk_exit.append(_grouped(np.searchsorted(uft, en), n))
            self.ufailt.append(uft)


class ClusteredPHReg(PHReg):
    """statsmodels' ``PHReg`` whose score residuals follow its tie method, computed with
    cumulative sums instead of a Python loop over failure times (over an hour at national
    scale for the four dropout models).

    Subject j's residual is the sum over the failure times at which it is at risk of its
    share of the score: with ``ties="efron"`` the d tied failures at a time count one at a
    time, the k-th with denominator ``S0 − (k/d)·D0`` in which the tied failures carry
    weight ``1 − k/d``, and each failure is compared with the mean of the d risk-set
    means. These are R's ``residuals(coxph, "score")``, whose cluster sums give
    ``coxph(cluster=)``'s robust variance (equal to R to 1e-8 relative on UIS and the
    synthetic dropout model). With Breslow ties they are statsmodels' own residuals.
    Subjects never at risk have no residual (NaN, as in statsmodels) and add 0 to their
    cluster's score.

    Its survival times are built vectorised (``SurvivalTimes``); otherwise it is
    ``PHReg``, whose constructor it repeats for that one change."""

    def __init__(
        self,
        endog,
        exog,
        status=None,
        entry=None,
        strata=None,
        offset=None,
        ties="breslow",
        missing="drop",
        **kwargs,
    ):
        status = np.ones(len(endog)) if status is None else status
        LikelihoodModel.__init__(
            self,
            endog,
            exog,
            status=status,
            entry=entry,
            strata=strata,
            offset=offset,
            missing=missing,
            hasconst=False,  # a Cox model has no intercept: skip statsmodels' rank search
            **kwargs,
        )
        for name in ("status", "entry", "strata", "offset"):
            if getattr(self, name) is not None:
                setattr(self, name, np.asarray(getattr(self, name)))
        self.surv = SurvivalTimes(
            self.endog, self.status, self.exog, self.strata, self.entry, self.offset
        )
        self.nobs = len(self.endog)
        self.groups = None
        self.missing = missing
        rank = float(design_rank(self.exog))
        self.df_resid, self.df_model = float(self.exog.shape[0] - rank), rank
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties must be 'efron' or 'breslow', not {ties!r}")
        self.ties = ties

    # The partial likelihood, its score and Hessian, vectorised over failure times (PHReg
    # loops over them in Python, with a p×p product per time: most of a national-scale
    # models stage); the same quantities for either tie method, equal to PHReg's to
    # rounding (tests/models/test_cox.py).
    def loglike(self, params):
        return sum(rs.log_likelihood() for rs in _risk_sets(self, params))

    def score(self, params):
        return sum(rs.score() for rs in _risk_sets(self, params))

    def hessian(self, params):
        return -sum(rs.information() for rs in _risk_sets(self, params))

    def score_residuals(self, params):
        resid = np.full(self.exog.shape, np.nan)
        for stx, rs in enumerate(_risk_sets(self, params)):
            a = rs.per_time(1 / rs.denom)
            b = rs.per_time(rs.xbar / rs.denom[:, None])
            # The tied failures' own weight 1 − k/d: what they lack of a and b.
            a_gap = rs.per_time(rs.frac / rs.denom)
            b_gap = rs.per_time(rs.frac[:, None] * rs.xbar / rs.denom[:, None])
            d = np.maximum(np.bincount(rs.time_of, minlength=rs.n_times), 1)
            mean_xbar = rs.per_time(rs.xbar) / d[:, None]
            r = -rs.e[:, None] * (rs.x * rs.over_risk(a)[:, None] - rs.over_risk(b))
            w, xf, ef = rs.where, rs.x[rs.failed], rs.e[rs.failed, None]
            r[rs.failed] += xf - mean_xbar[w] + ef * (xf * a_gap[w][:, None] - b_gap[w])
            r[rs.k_out <= rs.k_in] = np.nan
            resid[self.surv.stratum_rows[stx]] = r
        return resid

    def robust_covariance(self, params):
        if self.groups is None:
            raise ValueError("`groups` must be specified to calculate the robust covariance")
        codes = pd.factorize(self.groups)[0]
        # A subject never at risk adds nothing to the score: 0, where statsmodels' NaN
        # would make the whole covariance undefined.
        scores = np.nan_to_num(self.score_residuals(params), nan=0.0)
        sums = _bincount_columns(codes, scores, int(codes.max()) + 1)
        hess_inv = np.linalg.inv(self.hessian(params))
        return hess_inv @ (sums.T @ sums) @ hess_inv


def _time_scale(model: PHReg, transform: str) -> list[np.ndarray]:
    """g(t) at each stratum's failure times: ``km`` is 1 − the left-continuous
    Kaplan–Meier estimate of everyone (strata ignored, as ``cox.zph``), ``rank`` the rank
    of the time among all subjects' times, ``log`` and ``identity`` as named."""
    surv = model.surv
    times = np.concatenate(surv.time_s)
    status = np.concatenate(surv.status_s)
    if transform == "km":
        ut, inverse = np.unique(times, return_inverse=True)
        events = np.bincount(inverse, status)
        at_risk = np.cumsum(np.bincount(inverse)[::-1])[::-1]
        km = np.cumprod(1 - events / at_risk)
        before = np.concatenate([[1.0], km[:-1]])  # S(t−)

        def g(t: np.ndarray) -> np.ndarray:
            return 1 - before[np.searchsorted(ut, t)]
    elif transform == "rank":
        ranks = stats.rankdata(times)
        ut, first = np.unique(times, return_index=True)

        def g(t: np.ndarray) -> np.ndarray:
            return ranks[first[np.searchsorted(ut, t)]]
    elif transform == "log":

        def g(t: np.ndarray) -> np.ndarray:
            return np.log(np.asarray(t, float))
    elif transform == "identity":

        def g(t: np.ndarray) -> np.ndarray:
            return np.asarray(t, float)
    else:
        raise ValueError(f"transform must be one of {PH_TRANSFORMS}, not {transform!r}")
    per_stratum = [g(u) for u in surv.ufailt]
    # Centred on the mean over failures (each failure counted once).
    d = [
        np.bincount(np.searchsorted(u, t[s == 1]), minlength=len(u))
        for u, t, s in zip(surv.ufailt, surv.time_s, surv.status_s, strict=True)
    ]
    centre = sum(float(gt @ di) for gt, di in zip(per_stratum, d, strict=True)) / sum(
        int(di.sum()) for di in d
    )
    return [gt - centre for gt in per_stratum]


def proportional_hazards_test(
    model: PHReg,
    params: np.ndarray,
    terms: dict[str, list[int]] | None = None,
    transform: str = "km",
) -> pd.DataFrame:
    """Grambsch–Therneau test of proportional hazards, per term and global, as R's
    ``cox.zph`` (survival ≥ 3): the score test, at (β̂, 0), for adding ``g(t)·x`` to the
    model, with g a transform of time centred on its mean over failures. ``terms`` groups
    design columns into terms (a factor's dummies are one term, with as many df); default:
    one term per column. Returns one row per term and a ``GLOBAL`` row: ``term``, ``chisq``,
    ``df``, ``p``. Equal to ``cox.zph`` to 1e-6 on UIS and the dropout fixture."""
    params = np.asarray(params, float)
    p = len(params)
    gt = _time_scale(model, transform)
    info = np.zeros((2 * p, 2 * p))
    u = np.zeros(2 * p)
    for stx, rs in enumerate(_risk_sets(model, params)):
        g = gt[stx]
        u[p:] += g @ rs.schoenfeld_sums()
        gs = g[rs.time_of]
        # Information of (x, g·x, g²·x) pairs: the risk-set covariance weighted by g^m.
        blocks = [rs.information(gs**m) for m in range(3)]
        info += np.block([[blocks[0], blocks[1]], [blocks[1], blocks[2]]])
    if terms is None:
        terms = {str(j): [j] for j in range(p)}
    rows = []
    for name, cols in [*terms.items(), ("GLOBAL", list(range(p)))]:
        keep = list(range(p)) + [p + j for j in cols]
        uu = u[keep]
        chisq = float(uu @ np.linalg.solve(info[np.ix_(keep, keep)], uu))
        rows.append(
            {
                "term": name,
                "chisq": chisq,
                "df": len(cols),
                "p": float(stats.chi2.sf(chisq, len(cols))),
            }
        )
    return pd.DataFrame(rows)
