"""Clinical significance for any instrument: reliable change, cut-offs and the combined
classification of each client (Jacobson & Truax 1991), by the published methods.

This follows the R package **clinicalsignificance** (Claus, Wager & Bonnet, *Journal of
Statistical Software* 111(1), 2024; github.com/pedscience/clinicalsignificance, version
2.1.0.9000, commit 863dc77bddea89d14ff88ee332a334b305e2fe13) formula for formula, default
for default and in its category names. The R files followed:

- ``R/calc_rci.R`` — the reliable change index of each method;
- ``R/package-utils.R`` — ``.calc_improvement`` (strict inequalities), the standard errors
  of measurement, of the difference and of prediction, the Hageman–Arrindell reliability;
- ``R/calc_cutoff.R`` — the cut-offs a, b, c (Jacobson–Truax) and their true-score versions
  (Hageman–Arrindell), and who is clinical before and functional after;
- ``R/create_summary_table.R`` (``create_summary_table.cs_combined``) — the combined
  categories recovered, improved, unchanged, deteriorated, harmed, and
  (``create_summary_table.cs_statistical``) the cut-off-only categories;
- ``R/cs_combined.R`` / ``R/cs_distribution.R`` — the defaults: the pre-treatment mean and
  SD of the complete pairs (sample SD, n − 1), lower scores better unless said otherwise,
  critical value ``qnorm(1 − α/2)`` (1.959964 at α = .05), one-sided ``qnorm(1 − α)``
  (1.644854) for Hageman–Arrindell, cut-off a, and the sample's pre-treatment mean and SD
  as the dysfunctional population.

Methods (``METHODS``): ``JT`` Jacobson & Truax (1991); ``GLN`` Gulliksen–Lord–Novick (Hsu
1989, 1995); ``HLL`` Hsu–Linn–Lord (Hsu 1989); ``EN`` Edwards–Nunnally (Speer 1992);
``NK`` Nunnally & Kotsch (1983); ``HA`` Hageman & Arrindell (1999). The package's HLM
method (a mixed model over three or more measurements) and its anchor- and
percentage-based approaches are not implemented.

Conventions, as in the R package: the index is oriented as post − pre (positive: the score
rose), ``direction`` is +1 when higher is better and −1 when higher is worse; a client
improved when ``direction · RCI > critical`` and deteriorated when
``direction · RCI < −critical`` (an index exactly at the critical value is unchanged); a
client is clinical before when ``direction · pre < direction · cutoff`` and functional after
when ``direction · post > direction · cutoff`` (a score exactly at the cut-off is neither).

Where this module goes further than the package, it says so: the SD of the index and the
dysfunctional population may be given (a normative value) instead of taken from the
sample, and cut-off b may use the functional population's SD, as Jacobson & Truax (1991,
p. 13) word it (the package uses the dysfunctional SD). docs/clinical-significance.md has
the formulas, a worked example and the reproduction of the package's published results.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.instruments import Instrument, active_registry, at_caseness, reliable_change
from pipeline.outcomes import prefix

Method = Literal["JT", "GLN", "HLL", "EN", "NK", "HA"]
METHODS: tuple[Method, ...] = ("JT", "GLN", "HLL", "EN", "NK", "HA")
CutoffType = Literal["a", "b", "c"]
CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated", "harmed")
"""The combined classification (reliable change and the cut-off together)."""
CHANGE_CATEGORIES = ("improved", "unchanged", "deteriorated")
"""Reliable change alone (the package's distribution-based approach), and the cut-off alone
(its statistical approach)."""
POINTS = "points"
"""``outcome_counts``' name for the points rule: the instrument's reliable change in
points and its caseness cut-off (for PHQ-9 and GAD-7 the NHS Talking Therapies rules)."""
POINTS_CATEGORIES = (
    "reliable_recovery",
    "reliable_improvement_not_recovered",
    "no_reliable_change",
    "reliable_deterioration",
)
"""The points rule's classes, one per client: reliable recovery (at caseness at the start,
not at the end, reliably improved), reliable improvement without it, no reliable change,
reliable deterioration. NHS TT's "reliable improvement" is the first two together."""


@dataclass(frozen=True)
class Population:
    """Mean and SD of a population's scores (dysfunctional or functional norms)."""

    mean: float
    sd: float


@dataclass(frozen=True)
class SampleStats:
    """The complete pairs' descriptive statistics the methods use (SDs with n − 1)."""

    n: int
    mean_pre: float
    sd_pre: float
    mean_post: float
    sd_post: float
    correlation: float


def direction(higher_is_worse: bool) -> int:
    """The package's ``direction``: +1 when higher scores are better, −1 when worse."""
    return -1 if higher_is_worse else 1


def critical_value(method: Method = "JT", significance_level: float = 0.05) -> float:
    """The critical value of the index: two-sided ``qnorm(1 − α/2)`` (1.959964 at α = .05),
    one-sided ``qnorm(1 − α)`` (1.644854) for Hageman–Arrindell (R/cs_combined.R)."""
    if not 0 < significance_level < 1:
        raise ValueError(f"significance_level must lie between 0 and 1, not {significance_level}")
    tail = significance_level if method == "HA" else significance_level / 2
    return NormalDist().inv_cdf(1 - tail)


def se_measurement(sd: float, reliability: float) -> float:
    """Standard error of measurement, SD · sqrt(1 − r)."""
    return sd * math.sqrt(1 - reliability)


def s_diff(sd: float, reliability: float) -> float:
    """Standard error of the difference of two scores, sqrt(2) · SE = SD · sqrt(2(1 − r))
    (Jacobson & Truax 1991)."""
    return math.sqrt(2 * se_measurement(sd, reliability) ** 2)


def se_prediction(sd: float, reliability: float) -> float:
    """Standard error of prediction, SD · sqrt(1 − r²) (Gulliksen–Lord–Novick, HLL)."""
    return sd * math.sqrt(1 - reliability**2)


def reliability_ha(sd: float, se: float) -> float:
    """Hageman & Arrindell's reliability of a population with SD ``sd`` for a measurement
    error ``se``: (SD² − SE²) / SD²."""
    return (sd**2 - se**2) / sd**2


def sample_stats(pre: np.ndarray, post: np.ndarray) -> SampleStats:
    """Means, SDs (n − 1) and the pre–post correlation of complete pairs (``pre`` and
    ``post`` hold no missing value)."""
    n = len(pre)
    if n < 2:
        raise ValueError(f"the sample statistics need at least two complete pairs, not {n}")
    sd_pre, sd_post = float(np.std(pre, ddof=1)), float(np.std(post, ddof=1))
    spread = sd_pre > 0 and sd_post > 0
    corr = float(np.corrcoef(pre, post)[0, 1]) if spread else float("nan")
    return SampleStats(n, float(np.mean(pre)), sd_pre, float(np.mean(post)), sd_post, corr)


def _check_reliability(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, not {value}")


def reliable_change_index(
    pre: np.ndarray,
    post: np.ndarray,
    method: Method,
    *,
    reliability: float,
    stats: SampleStats,
    sd: float | None = None,
    reliability_post: float | None = None,
) -> np.ndarray:
    """Each client's reliable change index (post − pre scale) by ``method``
    (R/calc_rci.R). ``stats`` are the complete pairs' (``sample_stats``); ``sd`` replaces
    the sample's pre-treatment SD where the method uses it (a normative or given SD;
    None: the sample's, the package's only choice). ``reliability_post`` is the NK
    method's post-treatment reliability (None: equal to ``reliability``, as
    ``cs_distribution`` assumes).

    - JT: (post − pre) / S_diff, S_diff = SD · sqrt(2(1 − r)).
    - GLN: (post − M_pre − r(pre − M_pre)) / (SD · sqrt(1 − r²)).
    - HLL: (post − M_post − r(pre − M_pre)) / (SD · sqrt(1 − r²)).
    - EN: (post − [r(pre − M_pre) + M_pre]) / (SD · sqrt(1 − r)).
    - NK: (post − [r(pre − M_pre) + M_pre]) / sqrt(r² SD² (1 − r) + SD² (1 − r_post)).
    - HA: ((post − pre) r_dd + (M_post − M_pre)(1 − r_dd)) / (sqrt(r_dd) · sqrt(2 SE²)),
      r_dd the reliability of the difference scores from the pre and post SDs, their
      correlation and the Hageman–Arrindell reliabilities of each occasion.

    Worked example (JT): SD 5, r .80, so S_diff = 5 · sqrt(0.4) = 3.162; a client going
    from 20 to 12 has RCI (12 − 20) / 3.162 = −2.53, one going from 20 to 16 has −1.26.
    """
    _check_reliability("reliability", reliability)
    pre, post = np.asarray(pre, dtype=float), np.asarray(post, dtype=float)
    r, s = reliability, stats.sd_pre if sd is None else sd
    if not s > 0:
        raise ValueError(f"the SD must be positive, not {s} (every pre-treatment score alike?)")
    m_pre, m_post = stats.mean_pre, stats.mean_post
    if method == "JT":
        return (post - pre) / s_diff(s, r)
    if method == "GLN":
        return ((post - m_pre) - r * (pre - m_pre)) / se_prediction(s, r)
    if method == "HLL":
        return ((post - m_post) - r * (pre - m_pre)) / se_prediction(s, r)
    if method in ("EN", "NK"):
        pre_true = r * (pre - m_pre) + m_pre
        if method == "EN":
            return (post - pre_true) / se_measurement(s, r)
        r_post = r if reliability_post is None else reliability_post
        _check_reliability("reliability_post", r_post)
        return (post - pre_true) / math.sqrt(r**2 * s**2 * (1 - r) + s**2 * (1 - r_post))
    if method == "HA":
        se = se_measurement(s, r)
        r_dd = difference_reliability(stats, se, s)
        change = (post - pre) * r_dd + (m_post - m_pre) * (1 - r_dd)
        return change / (math.sqrt(r_dd) * math.sqrt(2 * se**2))
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def difference_reliability(stats: SampleStats, se: float, sd_pre: float | None = None) -> float:
    """Hageman & Arrindell's reliability of the difference scores, r_dd =
    (s₁² r₁ + s₂² r₂ − 2 s₁ s₂ r₁₂) / (s₁² + s₂² − 2 s₁ s₂ r₁₂), r_i = (s_i² − SE²)/s_i²
    (``calc_rci.cs_ha``; s₁ the pre SD, ``sd_pre`` if given, s₂ the post SD)."""
    s1, s2, r12 = (stats.sd_pre if sd_pre is None else sd_pre), stats.sd_post, stats.correlation
    r1, r2 = reliability_ha(s1, se), reliability_ha(s2, se)
    denominator = s1**2 + s2**2 - 2 * s1 * s2 * r12
    r_dd = (s1**2 * r1 + s2**2 * r2 - 2 * s1 * s2 * r12) / denominator
    if not r_dd > 0:  # also NaN: no spread after treatment
        raise ValueError(
            f"the reliability of the difference scores is {r_dd:.3g}: the Hageman–Arrindell "
            "index is undefined for these data"
        )
    return r_dd


def change_categories(rci: np.ndarray, higher_is_worse: bool, critical: float) -> np.ndarray:
    """improved / unchanged / deteriorated from the index (``.calc_improvement``): beyond the
    critical value in the better or the worse direction, strictly; missing stays None."""
    d = direction(higher_is_worse) * np.asarray(rci, dtype=float)
    out = np.where(d > critical, "improved", np.where(d < -critical, "deteriorated", "unchanged"))
    return _missing_where(out, np.isnan(d))


def _missing_where(labels: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``labels`` as an object array with None where ``missing``."""
    out = labels.astype(object)
    out[missing] = None
    return out


def cutoff(
    kind: CutoffType,
    dysfunctional: Population,
    functional: Population | None = None,
    *,
    higher_is_worse: bool,
    b_spread: Literal["dysfunctional", "functional"] = "dysfunctional",
) -> float:
    """Jacobson & Truax's cut-off between the dysfunctional and functional populations
    (``.calc_cutoff_jt``), d = ``direction``:

    - a = M_dys + d · 2 SD_dys (two SDs beyond the dysfunctional mean, towards health);
    - b = M_fun − d · 2 SD (within two SDs of the functional mean); SD is the dysfunctional
      SD in the R package (``b_spread="dysfunctional"``, the default here too), the
      functional SD in Jacobson & Truax's wording (``b_spread="functional"``);
    - c = (SD_dys · M_fun + SD_fun · M_dys) / (SD_dys + SD_fun) (where a client is as likely
      to belong to either; Jacobson & Truax recommend c when both norms are known).

    Example (the package's test from Jacobson & Truax's example): M_dys 40, SD 7.5, M_fun 60,
    SD 7.5, higher is better: a = 55, b = 45, c = 50.
    """
    d = direction(higher_is_worse)
    if kind == "a":
        return dysfunctional.mean + d * 2 * dysfunctional.sd
    if functional is None:
        raise ValueError(f"cut-off {kind} needs the functional population's mean and SD")
    if kind == "b":
        spread = dysfunctional.sd if b_spread == "dysfunctional" else functional.sd
        return functional.mean - d * 2 * spread
    if kind == "c":
        return (dysfunctional.sd * functional.mean + functional.sd * dysfunctional.mean) / (
            dysfunctional.sd + functional.sd
        )
    raise ValueError(f"unknown cut-off {kind!r}; use a, b or c")


def cutoff_ha(
    kind: CutoffType,
    dysfunctional: Population,
    reliability: float,
    functional: Population | None = None,
    *,
    higher_is_worse: bool,
) -> float:
    """Hageman & Arrindell's true-score cut-offs (``.calc_cutoff_ha``): as ``cutoff`` with
    each SD multiplied by the square root of its population's reliability, r_dys = r and
    r_fun = (SD_fun² − SE²) / SD_fun², SE = SD_dys · sqrt(1 − r)."""
    _check_reliability("reliability", reliability)
    d = direction(higher_is_worse)
    spread_d = dysfunctional.sd * math.sqrt(reliability)  # r_dys = r (same SE)
    if kind == "a":
        return dysfunctional.mean + d * 2 * spread_d
    if functional is None:
        raise ValueError(f"cut-off {kind} needs the functional population's mean and SD")
    if kind == "b":
        return functional.mean - d * 2 * spread_d
    if kind == "c":
        se = se_measurement(dysfunctional.sd, reliability)
        r_fun = reliability_ha(functional.sd, se)
        if not r_fun > 0:
            raise ValueError("the functional SD is below the measurement error: no true-score c")
        spread_f = functional.sd * math.sqrt(r_fun)
        return (spread_d * functional.mean + spread_f * dysfunctional.mean) / (spread_d + spread_f)
    raise ValueError(f"unknown cut-off {kind!r}; use a, b or c")


@dataclass(frozen=True)
class Classification:
    """How ``classify`` is to classify: the method and its inputs.

    ``sd`` and ``dysfunctional`` None take the sample's pre-treatment SD and mean, as the
    R package always does; ``functional`` is needed for cut-offs b and c."""

    method: Method = "JT"
    reliability: float = 0.8
    higher_is_worse: bool = True
    cutoff_type: CutoffType = "a"
    functional: Population | None = None
    dysfunctional: Population | None = None
    sd: float | None = None
    reliability_post: float | None = None
    significance_level: float = 0.05
    b_spread: Literal["dysfunctional", "functional"] = "dysfunctional"


def classify(
    pre: Sequence[float] | np.ndarray | pd.Series,
    post: Sequence[float] | np.ndarray | pd.Series,
    spec: Classification,
    ids: Sequence | np.ndarray | pd.Index | None = None,
) -> pd.DataFrame:
    """One row per client: ``id``, ``pre``, ``post``, ``change`` (post − pre), ``rci``,
    ``change_category`` (reliable change alone), ``clinical_pre``, ``functional_post``,
    ``cutoff_category`` (the cut-off alone) and ``category`` (combined: recovered,
    improved, unchanged, deteriorated, harmed), as ``cs_combined`` classifies them.

    Combined (``create_summary_table.cs_combined``): recovered = reliably improved, clinical
    before and functional after; improved = reliably improved otherwise; harmed = reliably
    deteriorated, not clinical before and not functional after; deteriorated = reliably
    deteriorated otherwise; unchanged = no reliable change. For HA, functional after and
    clinical after are decided on the true-score index ``cs_indiv`` against the one-sided
    critical value (``calc_cutoff_from_data.cs_ha``), and a client can be functional after
    only if clinical before. Rows with a missing score are kept with missing results; the
    sample statistics use complete pairs only (``na.omit``).

    Worked example, two clients (JT, r .80, SD given as 5, higher is worse, cut-off 14 from
    a = 24 − 2 · 5 with dysfunctional mean 24, SD 5): 20 → 12 has RCI −8 / 3.162 = −2.53
    (improved: 2.53 > 1.96), clinical before (20 > 14), functional after (12 < 14):
    recovered. 20 → 16 has RCI −1.26: unchanged.
    """
    pre_a, post_a = np.asarray(pre, dtype=float), np.asarray(post, dtype=float)
    if pre_a.shape != post_a.shape:
        raise ValueError("pre and post must have one score per client each")
    ids_a = np.arange(len(pre_a)) if ids is None else np.asarray(ids)
    ok = ~np.isnan(pre_a) & ~np.isnan(post_a)
    stats = sample_stats(pre_a[ok], post_a[ok])
    s = spec
    rci = np.full(len(pre_a), np.nan)
    rci[ok] = reliable_change_index(
        pre_a[ok],
        post_a[ok],
        s.method,
        reliability=s.reliability,
        stats=stats,
        sd=s.sd,
        reliability_post=s.reliability_post,
    )
    critical = critical_value(s.method, s.significance_level)
    changed = change_categories(rci, s.higher_is_worse, critical)
    dys, cut = applied_cutoff(s, stats)
    d = direction(s.higher_is_worse)
    if s.method == "HA":
        clinical_pre = d * pre_a < d * cut
        cs_indiv = _true_score_index(post_a, cut, dys.sd, s.reliability, stats)
        functional_post = clinical_pre & (d * cs_indiv > critical)
        clinical_post = ~clinical_pre & (d * cs_indiv < -critical)
        by_cutoff = np.where(
            functional_post, "improved", np.where(clinical_post, "deteriorated", "unchanged")
        )
    else:
        clinical_pre, functional_post = d * pre_a < d * cut, d * post_a > d * cut
        by_cutoff = np.where(
            clinical_pre & functional_post,
            "improved",
            np.where(~clinical_pre & ~functional_post, "deteriorated", "unchanged"),
        )
    improved, deteriorated = changed == "improved", changed == "deteriorated"
    recovered = improved & clinical_pre & functional_post
    harmed = deteriorated & ~clinical_pre & ~functional_post
    category = np.select(
        [recovered, improved, harmed, deteriorated],
        ["recovered", "improved", "harmed", "deteriorated"],
        "unchanged",
    )

    def missing_where_incomplete(values: np.ndarray) -> pd.Series:
        return pd.Series(values, dtype="object").where(pd.Series(ok))

    return pd.DataFrame(
        {
            "id": ids_a,
            "pre": pre_a,
            "post": post_a,
            "change": post_a - pre_a,
            "rci": rci,
            "change_category": missing_where_incomplete(changed),
            "clinical_pre": pd.array(clinical_pre, dtype="boolean"),
            "functional_post": pd.array(functional_post, dtype="boolean"),
            "cutoff_category": missing_where_incomplete(by_cutoff),
            "category": missing_where_incomplete(category),
        }
    ).assign(
        clinical_pre=lambda t: t["clinical_pre"].where(~np.isnan(pre_a)),
        functional_post=lambda t: t["functional_post"].where(ok),
        cutoff=cut,
        critical_value=critical,
    )


def applied_cutoff(spec: Classification, stats: SampleStats) -> tuple[Population, float]:
    """The dysfunctional population ``spec`` uses (its own, else the sample's pre-treatment
    mean and SD) and the cut-off from it: Hageman–Arrindell's true-score cut-off for HA,
    Jacobson–Truax's for every other method (as ``cs_combined`` dispatches)."""
    dys = spec.dysfunctional or Population(stats.mean_pre, stats.sd_pre)
    if spec.method == "HA":
        cut = cutoff_ha(
            spec.cutoff_type,
            dys,
            spec.reliability,
            spec.functional,
            higher_is_worse=spec.higher_is_worse,
        )
    else:
        cut = cutoff(
            spec.cutoff_type,
            dys,
            spec.functional,
            higher_is_worse=spec.higher_is_worse,
            b_spread=spec.b_spread,
        )
    return dys, cut


def ha_group_level(
    pre: Sequence[float] | np.ndarray | pd.Series,
    post: Sequence[float] | np.ndarray | pd.Series,
    spec: Classification,
) -> pd.DataFrame:
    """Hageman & Arrindell's group-level result (``category``, ``proportion``): the
    expected share of the group that truly ``changed`` for the better and that is truly
    ``functional`` after treatment (``create_summary_table.cs_combined``, method HA):

    - changed: P(true change in the better direction), z = −mean(change) /
      (SD(change) · sqrt(r_dd));
    - functional: P(true post score beyond the cut-off), z = (cut-off − M_post) /
      (SD_post · sqrt(r_post)); each the upper tail when higher is better, the lower when
      higher is worse.

    ``spec`` gives the reliability, direction and cut-off (the true-score cut-off, as for
    method HA); complete pairs only."""
    pre_a, post_a = np.asarray(pre, dtype=float), np.asarray(post, dtype=float)
    ok = ~np.isnan(pre_a) & ~np.isnan(post_a)
    pre_a, post_a = pre_a[ok], post_a[ok]
    stats = sample_stats(pre_a, post_a)
    ha = dataclasses.replace(spec, method="HA")
    _, cut = applied_cutoff(ha, stats)
    s = stats.sd_pre if spec.sd is None else spec.sd
    se = se_measurement(s, spec.reliability)
    r_dd = difference_reliability(stats, se, s)
    r_post = reliability_ha(stats.sd_post, se)  # the index's SE, as the package
    change = post_a - pre_a
    z_changed = -float(np.mean(change)) / (float(np.std(change, ddof=1)) * math.sqrt(r_dd))
    z_functional = (cut - stats.mean_post) / (stats.sd_post * math.sqrt(r_post))
    phi = NormalDist().cdf
    if spec.higher_is_worse:
        changed, functional = phi(z_changed), phi(z_functional)
    else:
        changed, functional = 1 - phi(z_changed), 1 - phi(z_functional)
    return pd.DataFrame(
        {"category": ["changed", "functional"], "proportion": [changed, functional]}
    )


def _true_score_index(
    post: np.ndarray, cut: float, sd_dys: float, reliability: float, stats: SampleStats
) -> np.ndarray:
    """Hageman & Arrindell's ``cs_indiv``: (M_post + (post − M_post) r_post − cut) /
    (sqrt(r_post) · SE), r_post = (SD_post² − SE²)/SD_post², SE = SD_dys · sqrt(1 − r)."""
    se = se_measurement(sd_dys, reliability)
    r_post = reliability_ha(stats.sd_post, se) if stats.sd_post > 0 else float("nan")
    if not r_post > 0:
        raise ValueError(
            "the post-treatment SD is not above the measurement error: no true-score index"
        )
    true_post = stats.mean_post + (post - stats.mean_post) * r_post
    return (true_post - cut) / (math.sqrt(r_post) * se)


def category_counts(table: pd.DataFrame, column: str = "category") -> pd.DataFrame:
    """Clients per category (``category``, ``n``), every category listed (zeros too), in the
    package's order; clients with a missing category are not counted."""
    levels = CATEGORIES if column == "category" else CHANGE_CATEGORIES
    n = table[column].value_counts().reindex(levels, fill_value=0)
    return pd.DataFrame({"category": list(levels), "n": n.to_numpy(dtype="int64")})


def instrument_classification(
    instrument: Instrument, method: Method = "JT", significance_level: float = 0.05
) -> Classification:
    """The classification an instrument's registry entry implies: its reliability; its
    reference SD for the index (None: the sample's); its dysfunctional norms (None: the
    sample's baseline); cut-off c when functional norms are registered, else a."""
    if instrument.reliability is None:
        raise ValueError(f"{instrument.name} has no reliability: no reliable change index")

    def norms(mean: float | None, sd: float | None) -> Population | None:
        return None if mean is None or sd is None else Population(mean, sd)

    functional = norms(instrument.functional_mean, instrument.functional_sd)
    return Classification(
        method=method,
        reliability=instrument.reliability,
        higher_is_worse=instrument.higher_is_worse,
        cutoff_type="c" if functional is not None else "a",
        functional=functional,
        dysfunctional=norms(instrument.dysfunctional_mean, instrument.dysfunctional_sd),
        sd=instrument.reference_sd,
        significance_level=significance_level,
    )


def points_categories(instrument: Instrument, baseline: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The points rule's class of each client (``POINTS_CATEGORIES``) by the outcome
    table's own rules (``pipeline.instruments.reliable_change`` and ``at_caseness``: for
    PHQ-9 and GAD-7 the NHS Talking Therapies rules); None where a score is missing."""
    rc = reliable_change(instrument, baseline, last)
    recovered = at_caseness(instrument, baseline) & ~at_caseness(instrument, last)
    out = np.select(
        [(rc == 1) & recovered, rc == 1, rc == -1],
        ["reliable_recovery", "reliable_improvement_not_recovered", "reliable_deterioration"],
        "no_reliable_change",
    )
    return _missing_where(out, np.isnan(rc))


def outcome_counts(
    frame: pd.DataFrame,
    registry: Mapping[str, Instrument] | None = None,
    methods: Sequence[Method] = ("JT",),
    significance_level: float = 0.05,
) -> pd.DataFrame:
    """Exact counts (``instrument``, ``method``, ``category``, ``n``) of the outcome
    table's clients by the points rule (``method`` ``points``: ``POINTS_CATEGORIES``)
    and by each of ``methods``' combined classification (``CATEGORIES``), side by side,
    for every instrument of ``registry`` (default: the active one) with
    ``<prefix>_baseline`` and ``<prefix>_last`` columns in ``frame``
    (``pipeline.outcomes.prefix``). Clients with both scores are counted; pass a subset of
    rows (e.g. those at caseness at baseline) to count a population. A method that cannot
    be applied (no reliability registered, fewer than two clients with both scores, or an
    index undefined for the data) has no rows; ``outcome_settings`` says why. Counts are
    exact: disclosure control is applied where they are shared."""
    return _counts_and_settings(frame, registry, methods, significance_level)[0]


def outcome_settings(
    frame: pd.DataFrame,
    registry: Mapping[str, Instrument] | None = None,
    methods: Sequence[Method] = ("JT",),
    significance_level: float = 0.05,
) -> pd.DataFrame:
    """What ``outcome_counts`` used, one row per instrument and method: ``n`` (clients with
    both scores), ``reliability``, ``sd`` and ``sd_source`` (reference or sample),
    ``cutoff_type``, ``cutoff`` and ``cutoff_source`` (norms or sample), ``critical_value``
    and ``criterion_points`` (for JT the change in points that is reliable, critical ·
    S_diff; for the points rule the registry's reliable change, its cut-off the caseness
    score), and ``note``: why a method could not be applied (empty when it was)."""
    return _counts_and_settings(frame, registry, methods, significance_level)[1]


def _counts_and_settings(
    frame: pd.DataFrame,
    registry: Mapping[str, Instrument] | None,
    methods: Sequence[Method],
    significance_level: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``outcome_counts`` and ``outcome_settings`` from one classification of each
    instrument and method (at national scale classifying twice cost seconds)."""
    counts: list[tuple[str, str, str, int]] = []
    settings: list[dict[str, object]] = []
    for inst, base, last in _instrument_pairs(frame, registry):
        n = int((~np.isnan(base) & ~np.isnan(last)).sum())
        points = pd.Series(points_categories(inst, base, last)).value_counts()
        counts += [(inst.name, POINTS, c, int(points.get(c, 0))) for c in POINTS_CATEGORIES]
        settings.append(
            {
                "instrument": inst.name,
                "method": POINTS,
                "n": n,
                "criterion_points": inst.reliable_change,
                "cutoff": inst.caseness,
                "cutoff_source": "caseness",
                "note": "",
            }
        )
        for method, table, note in _classified(inst, base, last, methods, significance_level):
            row: dict[str, object] = {"instrument": inst.name, "method": method, "n": n}
            if table is None:
                settings.append(row | {"note": note})
                continue
            counts += [
                (inst.name, method, c, int(k))
                for c, k in category_counts(table).itertuples(index=False)
            ]
            spec = instrument_classification(inst, method, significance_level)
            sd = (
                spec.sd
                if spec.sd is not None
                else float(np.std(base[table["category"].notna()], ddof=1))
            )
            critical = float(table["critical_value"].iloc[0])
            settings.append(
                row
                | {
                    "reliability": spec.reliability,
                    "sd": sd,
                    "sd_source": "reference" if spec.sd is not None else "sample",
                    "cutoff_type": spec.cutoff_type,
                    "cutoff": float(table["cutoff"].iloc[0]),
                    "cutoff_source": "norms" if spec.dysfunctional is not None else "sample",
                    "critical_value": critical,
                    "criterion_points": (
                        critical * s_diff(sd, spec.reliability) if method == "JT" else None
                    ),
                    "note": "",
                }
            )
    count_table = pd.DataFrame(counts, columns=["instrument", "method", "category", "n"])
    return count_table.astype({"n": "int64"}), pd.DataFrame(settings)


def _instrument_pairs(
    frame: pd.DataFrame, registry: Mapping[str, Instrument] | None
) -> Iterator[tuple[Instrument, np.ndarray, np.ndarray]]:
    """(instrument, baseline, last) for each registry instrument with both columns."""
    known = active_registry() if registry is None else registry
    for inst in known.values():
        base_col, last_col = f"{prefix(inst.name)}_baseline", f"{prefix(inst.name)}_last"
        if base_col in frame and last_col in frame:
            yield inst, frame[base_col].to_numpy(dtype=float), frame[last_col].to_numpy(dtype=float)


def _classified(
    inst: Instrument,
    base: np.ndarray,
    last: np.ndarray,
    methods: Sequence[Method],
    significance_level: float,
) -> Iterator[tuple[Method, pd.DataFrame | None, str]]:
    """(method, ``classify`` table or None, why not) for each of ``methods``."""
    complete = int((~np.isnan(base) & ~np.isnan(last)).sum())
    for method in methods:
        if inst.reliability is None:
            yield method, None, f"no reliability registered for {inst.name}"
        elif complete < 2:
            yield method, None, f"{complete} client(s) with both scores; two are needed"
        else:
            try:
                spec = instrument_classification(inst, method, significance_level)
                yield method, classify(base, last, spec), ""
            except ValueError as exc:  # e.g. HA: no spread after treatment
                yield method, None, str(exc)


def classification_population(
    outcomes: pd.DataFrame, instrument: Instrument, population: str = "caseness"
) -> pd.Series:
    """Who the side-by-side classification counts for ``instrument``: episodes that
    finished a course (two or more attended sessions, the NHS Talking Therapies
    convention) with a baseline and a last score, at caseness on the instrument at baseline
    when ``population`` is ``caseness`` (``outcomes.population``; cut-off based categories
    — recovery — are not defined for a client who starts below it)."""
    p = prefix(instrument.name)
    base, last = outcomes[f"{p}_baseline"], outcomes[f"{p}_last"]
    finished = outcomes.get("finished_course", pd.Series(True, index=outcomes.index))
    keep = finished.astype("boolean").fillna(False).astype(bool) & base.notna() & last.notna()
    if population == "caseness":
        keep &= pd.Series(at_caseness(instrument, base), index=outcomes.index)
    return keep


SIDE_BY_SIDE_COLUMNS = [
    "instrument",
    "population",
    "method",
    "category",
    "clients",
    "clients_classified",
    "share_clients",
]


def side_by_side(
    outcomes: pd.DataFrame,
    population: str = "caseness",
    methods: Sequence[Method] = METHODS,
    significance_level: float = 0.05,
    registry: Mapping[str, Instrument] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The outcome table's clients classified by the points rule (for PHQ-9 and GAD-7 the
    NHS Talking Therapies rules) and by each of ``methods``' combined classification, side
    by side, for every instrument of ``registry`` (default: the active one) the outcome
    table has scores for, among ``classification_population``.

    Returns (counts, settings): counts in ``SIDE_BY_SIDE_COLUMNS`` (``clients`` per
    category, ``clients_classified`` per instrument and method, ``share_clients`` their
    ratio) and ``outcome_settings``' table with the instrument's population. Exact counts:
    the stage's disclosure control rounds and suppresses them where they are shared."""
    known = active_registry() if registry is None else registry
    counts, settings = [], []
    label = (
        "finished a course, at caseness at baseline"
        if population == "caseness"
        else ("finished a course, any baseline")
    )
    for name, inst in known.items():
        p = prefix(name)
        if f"{p}_baseline" not in outcomes or f"{p}_last" not in outcomes:
            continue
        # only the instrument's two score columns: the outcome table has ~100
        wanted = outcomes[[f"{p}_baseline", f"{p}_last"]]
        rows = wanted[classification_population(outcomes, inst, population)]
        c, setting = _counts_and_settings(rows, {name: inst}, methods, significance_level)
        if c.empty:
            continue
        c = c.rename(columns={"n": "clients"}).assign(population=label)
        c["clients_classified"] = c.groupby("method")["clients"].transform("sum")
        c["share_clients"] = c["clients"] / c["clients_classified"].where(
            c["clients_classified"] > 0
        )
        counts.append(c)
        settings.append(setting.assign(population=label))
    if not counts:
        return pd.DataFrame(columns=SIDE_BY_SIDE_COLUMNS), pd.DataFrame()
    return (
        pd.concat(counts, ignore_index=True)[SIDE_BY_SIDE_COLUMNS],
        pd.concat(settings, ignore_index=True),
    )
