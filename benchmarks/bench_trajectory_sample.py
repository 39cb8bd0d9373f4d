"""Does the trajectory model fitted to a random sample of whole caseloads match the full fit?

    python benchmarks/bench_trajectory_sample.py            # 100,000 clients, 10,000 sampled
    python benchmarks/bench_trajectory_sample.py 50000 5000

Simulates the cohort of bench_trajectory.py (about 8 PHQ-9 scores per client, 60 clients per
therapist, within-client alliance effect −0.15), fits the pipeline's two-level model to every
client and to the sample that ``sample_clusters`` draws at ``models.therapist_level_max_episodes``
(whole therapists, the pipeline's seed), each in a fresh process, and records every fixed
effect with its interval, the wall time and peak memory of both. Writes
benchmarks/results/trajectory_sample.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, save
from bench_trajectory import WITHIN_EFFECT, simulate

from pipeline.config import ModelsParams
from pipeline.models.analysis import TRAJECTORY_FORMULA, sample_clusters
from pipeline.models.trajectories import fit_trajectory


def fit(n_clients: int, max_episodes: int | None) -> dict:
    def run() -> dict:
        data = simulate(n_clients)
        seed = ModelsParams().trajectory_sample_seed
        data, note = sample_clusters(data, max_episodes, seed, "max_episodes")
        result = fit_trajectory(data, TRAJECTORY_FORMULA, "episode_id", "~weeks")
        table = result.coefficients.set_index("term")[["estimate", "ci_low", "ci_high"]]
        return {
            "clients_fitted": int(data["episode_id"].nunique()),
            "note": note,
            "converged": result.card.converged,
            "fixed_effects": table.round(4).to_dict(orient="index"),
        }

    return run


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else ModelsParams().therapist_level_max_episodes
    full = measure(fit(n, None)) | {"what": f"full fit, {n:,} clients"}
    print(full, flush=True)
    sample = measure(fit(n, k)) | {"what": f"sample of whole caseloads, about {k:,} clients"}
    print(sample, flush=True)
    rows = [full, sample]
    if full.get("fixed_effects") and sample.get("fixed_effects"):
        agree = {
            term: bool(
                sample["fixed_effects"][term]["ci_low"]
                <= row["estimate"]
                <= sample["fixed_effects"][term]["ci_high"]
            )
            for term, row in full["fixed_effects"].items()
        }
        rows.append(
            {
                "what": "full-fit estimate inside the sample's 95% interval",
                "by_term": agree,
                "truth_within_effect": WITHIN_EFFECT,
            }
        )
        print(rows[-1])
    print("wrote", save("trajectory_sample", rows))


if __name__ == "__main__":
    main()
