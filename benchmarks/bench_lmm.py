"""The exact two-level mixed model against lme4 and statsmodels MixedLM, on the same rows.

    python benchmarks/bench_lmm.py data       # write the rows to benchmarks/.data/ (~5 min)
    Rscript benchmarks/lme4_reference.R       # lme4 on them: results/lme4_reference.csv
    python benchmarks/bench_lmm.py            # ours and statsmodels: results/lmm.json, lmm.md
    python benchmarks/bench_lmm.py --no-statsmodels   # ours again; statsmodels' kept

Three sizes, the model of the pipeline's trajectory analysis (score ~ weeks + within- and
between-client alliance, random intercept and slope per client, ML):

- ``default``: the default cohort's trajectory rows, exactly as the models stage builds
  them (``dvc repro models`` first: it reads data/interim and params.yaml);
- ``100k`` and ``1.76M``: simulated clients with 5 scores each (the default cohort has 4.8
  per client; 1.76 million episodes is a national year of 10 million appointments) from a
  known model (``bench_trajectory.simulate``).

lme4 is timed by the R script (``lmer`` with its default optimiser, the time of the fit
alone, not of reading the file) once, and its estimates and times are stored in
``results/lme4_reference.csv``. Here every fit runs in a fresh process (time and peak
memory its own; BLAS at one thread, as inside the pipeline's stages): ours through the
pipeline's ``fit_trajectory`` (design matrices, fit, boundary checks: what a stage pays)
and statsmodels ``MixedLM`` (lbfgs, what the pipeline used before), capped at
``STATSMODELS_CAP`` seconds. Each fit's fixed effects, their standard errors and its
log-likelihood are compared with lme4's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure, save
from bench_trajectory import simulate

from pipeline.models.analysis import TRAJECTORY_FORMULA

HERE = Path(__file__).parent
DATA = HERE / ".data"
RESULTS = HERE / "results"
SIZES = {"default": None, "100k": 100_000, "1.76M": 1_760_000}
SCORES_PER_CLIENT = 5
STATSMODELS_CAP = 1800
TERMS = {"(Intercept)": "Intercept"}  # lme4's names → patsy's
COLUMNS = ["score", "weeks", "alliance_score_within", "alliance_score_between", "episode"]


def default_rows() -> pd.DataFrame:
    """The models stage's trajectory rows on the default cohort."""
    from pipeline.config import load_params
    from pipeline.io import read_interim
    from pipeline.models.analysis import trajectory_frame

    params = load_params(Path("params.yaml"))
    tables, _, _ = read_interim(Path("data/interim"), ("sessions", "measures", "episodes"))
    long = trajectory_frame(
        tables["sessions"],
        tables["measures"],
        tables["episodes"],
        params.outcomes.primary_instrument,
        params.models,
    )
    return long.rename(columns={"episode_id": "episode"})


def write_data() -> None:
    DATA.mkdir(exist_ok=True)
    for name, clients in SIZES.items():
        rows = default_rows() if clients is None else simulate(clients, k=SCORES_PER_CLIENT)
        rows = rows.rename(columns={"episode_id": "episode"})
        rows = rows[COLUMNS].dropna()
        rows.to_csv(DATA / f"lmm_{name}.csv", index=False)
        print(f"{name}: {len(rows)} rows, {rows['episode'].nunique()} clients", flush=True)


def _compare(name: str, estimates: pd.Series, se: pd.Series, llf: float) -> dict:
    """Differences from lme4's default fit and, where stored, its tight-tolerance fit."""
    r = pd.read_csv(RESULTS / "lme4_reference.csv")
    r = r[r["size"] == name]
    by = {k: g.set_index("name")["value"].rename(TERMS) for k, g in r.groupby("kind")}
    out = {}
    for suffix, label in (("", "lme4"), ("_tight", "lme4_tight")):
        if f"estimate{suffix}" in by:
            out |= {
                f"max_abs_diff_fixed_vs_{label}": float(
                    (estimates - by[f"estimate{suffix}"]).abs().max()
                ),
                f"max_rel_diff_se_vs_{label}": float((se / by[f"se{suffix}"] - 1).abs().max()),
                f"loglik_minus_{label}": float(llf - by[f"loglik{suffix}"]["logLik"]),
            }
    return out


def ours(name: str) -> dict:
    from pipeline.models.trajectories import fit_trajectory

    rows = pd.read_csv(DATA / f"lmm_{name}.csv")
    start = pd.Timestamp.now()
    fit = fit_trajectory(rows, TRAJECTORY_FORMULA, "episode", "~weeks", "benchmark")
    seconds = (pd.Timestamp.now() - start).total_seconds()
    c = fit.coefficients.set_index("term")
    se = (c["ci_high"] - c["ci_low"]) / (2 * 1.959963984540054)
    return {
        "fit_seconds": round(seconds, 2),
        "converged": bool(fit.card.converged),
        **_compare(name, c["estimate"], se, float(fit.card.log_likelihood or np.nan)),
    }


def statsmodels_fit(name: str) -> dict:
    import statsmodels.formula.api as smf

    rows = pd.read_csv(DATA / f"lmm_{name}.csv")
    start = pd.Timestamp.now()
    result = smf.mixedlm(TRAJECTORY_FORMULA, rows, groups=rows["episode"], re_formula="~weeks").fit(
        reml=False, method=["lbfgs"]
    )
    seconds = (pd.Timestamp.now() - start).total_seconds()
    return {
        "fit_seconds": round(seconds, 2),
        "converged": bool(result.converged),
        **_compare(name, result.fe_params, result.bse_fe, float(result.llf)),
    }


def _lme4(name: str) -> dict:
    r = pd.read_csv(RESULTS / "lme4_reference.csv")
    r = r[r["size"] == name].set_index("kind")
    return {
        "fit_seconds": float(r.loc["seconds", "value"]),
        "rows": int(r.loc["rows", "value"]),
        "clients": int(r.loc["clients", "value"]),
    }


def _earlier() -> dict[str, dict]:
    """The stored results, by size: a run of some sizes replaces only theirs."""
    path = RESULTS / "lmm.json"
    if not path.exists():
        return {}
    return {r["size"]: r for r in json.loads(path.read_text())["results"]}


def _earlier_statsmodels() -> dict[str, dict]:
    """statsmodels' stored results by size (``--no-statsmodels`` keeps them: its 1.76M fit
    alone takes the 30-minute cap)."""
    return {k: r["statsmodels"] for k, r in _earlier().items() if "statsmodels" in r}


def main(names: list[str], with_statsmodels: bool) -> None:
    from threadpoolctl import threadpool_limits

    earlier = {} if with_statsmodels else _earlier_statsmodels()
    out = []
    for name in names:
        lme4 = _lme4(name)
        row: dict = {"size": name, "rows": lme4["rows"], "clients": lme4["clients"]}
        row["lme4_seconds"] = lme4["fit_seconds"]
        with threadpool_limits(limits=1, user_api="blas"):
            row["ours"] = measure(lambda name=name: ours(name))
            if with_statsmodels:
                row["statsmodels"] = measure(
                    lambda name=name: statsmodels_fit(name), timeout=STATSMODELS_CAP
                )
            elif name in earlier:
                row["statsmodels"] = {**earlier[name], "from_an_earlier_run": True}
        mine = row["ours"].get("fit_seconds")
        row["ours_over_lme4"] = round(mine / lme4["fit_seconds"], 2) if mine else None
        out.append(row)
        print(row, flush=True)
        stored = _earlier() | {r["size"]: r for r in out}
        save("lmm", [stored[k] for k in SIZES if k in stored])
    stored = _earlier()
    write_markdown([stored[k] for k in SIZES if k in stored])


def _cell(result: dict | None, key: str, fmt: str = "{:.3g}") -> str:
    if not result:
        return "not run"
    if result.get("timed_out_after_s"):
        return f"> {result['timed_out_after_s']:.0f} s (stopped)"
    value = result.get(key)
    return "—" if value is None else fmt.format(value)


def _gaps(result: dict | None, label: str) -> str:
    """max |Δβ| · max relative Δse · Δ log-likelihood against ``label``'s fit."""
    if not result or f"max_abs_diff_fixed_vs_{label}" not in result:
        return "—" if result and "seconds" in result and result["seconds"] else "not run"
    return (
        f"{result[f'max_abs_diff_fixed_vs_{label}']:.1e} · "
        f"{result[f'max_rel_diff_se_vs_{label}']:.1e} · "
        f"{result[f'loglik_minus_{label}']:+.1e}"
    )


def write_markdown(rows: list[dict]) -> None:
    lines = [
        "# The exact two-level mixed model vs lme4 and statsmodels",
        "",
        "`python benchmarks/bench_lmm.py` (after `bench_lmm.py data` and "
        "`Rscript benchmarks/lme4_reference.R`). Seconds are the fit alone (data in "
        "memory); ours through the pipeline's `fit_trajectory`, each fit in a fresh process. "
        "Gaps are max |Δβ| · max relative Δse · Δ log-likelihood (positive: a higher "
        "likelihood than the reference) against lme4's fit with a tight optimiser tolerance "
        "(`lme4 tight`; not affordable at 1.76M) and with its default one.",
        "",
        "| rows (clients) | lme4 s | ours s | ours / lme4 | ours peak MB | statsmodels s "
        "| ours vs lme4 tight | ours vs lme4 default | statsmodels vs lme4 tight "
        "| statsmodels vs lme4 default |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, s = r["ours"], r.get("statsmodels")
        lines.append(
            f"| {r['rows']:,} ({r['clients']:,}) | {r['lme4_seconds']:.2f} "
            f"| {_cell(o, 'fit_seconds', '{:.2f}')} | {r['ours_over_lme4']} "
            f"| {_cell(o, 'peak_rss_mb', '{:.0f}')} | {_cell(s, 'fit_seconds', '{:.1f}')}"
            + (" (earlier run)" if s and s.get("from_an_earlier_run") else "")
            + " "
            f"| {_gaps(o, 'lme4_tight')} | {_gaps(o, 'lme4')} "
            f"| {_gaps(s, 'lme4_tight')} | {_gaps(s, 'lme4')} |"
        )
    m = machine()
    lines += ["", f"Machine: {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}."]
    (RESULTS / "lmm.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["data"]:
        write_data()
    else:
        sizes = [a for a in args if a in SIZES] or list(SIZES)
        main(sizes, "--no-statsmodels" not in args)
