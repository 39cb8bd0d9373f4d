"""How the trajectory model's fit time grows with the number of clients.

    python benchmarks/bench_trajectory.py                 # 5k, 20k, 100k clients
    python benchmarks/bench_trajectory.py 5000 20000      # other sizes

Also times the three-level model of the pipeline (clients within therapists, 60 clients per
therapist, client intercept and slope as variance components) at 5k and 20k clients.

statsmodels MixedLM evaluates the likelihood group by group, so its cost grows at least
linearly with the number of clients and is known to be one to two orders of magnitude slower
than lme4. Each size simulates ~8 PHQ-9 scores per client from a known random intercept and
slope model with a within-client alliance effect, and fits it through the pipeline's
``fit_trajectory`` (ML, random intercept and slope per client) in a fresh process, recording
wall time, peak memory, convergence and the estimate against the truth. A size that takes
longer than the cap (default 30 min) is recorded as timed out. Writes
benchmarks/results/trajectory.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, save

from pipeline.models.analysis import TRAJECTORY_FORMULA
from pipeline.models.trajectories import fit_trajectory, person_mean_centre

SCORES_PER_CLIENT = 8
WITHIN_EFFECT = -0.15
CAP_SECONDS = 1800


CLIENTS_PER_THERAPIST = 60
THREE_LEVEL_SIZES = (5_000, 20_000)


def simulate(n_clients: int, seed: int = 1, k: int = SCORES_PER_CLIENT) -> pd.DataFrame:
    """``k`` scores per client from a known random intercept and slope model."""
    rng = np.random.default_rng(seed)
    client = np.repeat(np.arange(n_clients), k)
    weeks = np.tile(np.arange(k) * 1.5, n_clients) + rng.uniform(0, 1, n_clients * k)
    cov = [[5.8**2, -0.5 * 5.8 * 0.7], [-0.5 * 5.8 * 0.7, 0.7**2]]
    b = rng.multivariate_normal([0, 0], cov, n_clients)
    trait = rng.normal(34, 3, n_clients)
    alliance = trait[client] + rng.normal(0, 2, n_clients * k)
    score = (
        16
        + b[client, 0]
        + (-0.8 + b[client, 1]) * weeks
        - 0.35 * (trait[client] - 34)
        + WITHIN_EFFECT * (alliance - trait[client])
        + rng.normal(0, 2.5, n_clients * k)
    )
    therapist = client // CLIENTS_PER_THERAPIST
    score = score + rng.normal(0, 0.4, therapist.max() + 1)[therapist]
    d = pd.DataFrame(
        {
            "episode_id": client.astype(str),
            "cluster": therapist.astype(str),
            "weeks": weeks,
            "alliance_score": alliance,
            "score": score,
        }
    )
    return person_mean_centre(d, "alliance_score", "episode_id")


def fit(n_clients: int, three_level: bool = False) -> dict:
    data = simulate(n_clients)
    if three_level:
        result = fit_trajectory(
            data,
            TRAJECTORY_FORMULA,
            "cluster",
            "1",
            "benchmark",
            vc_formula={
                "client intercept": "0 + C(episode_id)",
                "client slope": "0 + C(episode_id):weeks",
            },
        )
    else:
        result = fit_trajectory(data, TRAJECTORY_FORMULA, "episode_id", "~weeks", "benchmark")
    row = result.coefficients.set_index("term").loc["alliance_score_within"]
    return {
        "rows": len(data),
        "converged": result.card.converged,
        "within_estimate": round(float(row["estimate"]), 4),
        "within_truth": WITHIN_EFFECT,
        "within_ci": [round(float(row["ci_low"]), 4), round(float(row["ci_high"]), 4)],
    }


def main(sizes: list[int], three_level_only: bool = False) -> None:
    from threadpoolctl import threadpool_limits

    rows = []
    runs = [] if three_level_only else [(n, False) for n in sizes]
    runs += [(n, True) for n in THREE_LEVEL_SIZES]
    for n, three in runs:
        with threadpool_limits(limits=1, user_api="blas"):  # as inside the pipeline's stages
            result = measure(lambda n=n, three=three: fit(n, three), timeout=CAP_SECONDS)
        model = "clients within therapists" if three else "client intercept and slope"
        rows.append({"clients": n, "model": model, **result})
        print(rows[-1], flush=True)
        save("trajectory_three_level" if three_level_only else "trajectory", rows)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--three-level-only"]
    main([int(a) for a in args] or [5_000, 20_000, 100_000], "--three-level-only" in sys.argv)
