"""Fixtures for the Dask engine: one small local cluster for the session, awkward exports."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import Params
from pipeline.engine.buckets import bucket_of

PARTITIONS = 3


@pytest.fixture(scope="session")
def dask_address():
    """A running scheduler with two single-threaded worker processes (closed at the end)."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GiB",
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def partitions() -> int:
    """Episode buckets in these tests (the awkward export's duplicates span two of them)."""
    return PARTITIONS


@pytest.fixture(scope="session")
def engine_params():
    """Params for one engine: ``engine_params("dask", address, partitions, **ingest)``."""

    def build(
        engine: str, address: str | None = None, partitions: int | None = PARTITIONS, **ingest
    ):
        return Params(
            engine=engine,
            ingest=ingest,
            dask={"scheduler_address": address, "partitions": partitions, "connect_timeout_s": 20},
        )

    return build


def _csv(df: pd.DataFrame) -> list[str]:
    return df.to_csv(index=False, lineterminator="\n").splitlines()


@pytest.fixture
def awkward_export(tmp_path):
    """A small export whose problems cross buckets: an id duplicated in episodes that hash
    to different buckets (session and goal, ratings of that goal), padded ids, orphans,
    a malformed and an empty line, an extra column, a client with episodes in two buckets.
    Returns (folder, the two episodes the duplicates span)."""
    eps = [f"e{i}" for i in range(1, 13)]
    buckets = bucket_of(pd.Series(eps), PARTITIONS)
    first = eps[0]
    other = next(e for e, b in zip(eps, buckets, strict=True) if b != buckets[0])
    episodes = pd.DataFrame(
        {
            "episode_id": [*eps, "e3"],  # e3 twice: the second is quarantined
            "client_id": ["c1", "c2", "c3", "c4", "c1", *[f"c{i}" for i in range(6, 14)]],
            "therapist_id": ["t1", "t2"] * 6 + ["t1"],
            "referral_date": [f"2024-0{1 + i % 6}-01" for i in range(12)] + ["2024-03-01"],
            "end_date": ["", "2024-01-01"] + [""] * 11,  # e2 ends before its referral
            "end_reason": ["completed"] * 13,
            "planned_sessions": ["8"] * 13,
            "source_system": ["x"] * 13,  # not in the contract: dropped, listed in the report
        }
    )
    rows = []
    for i, e in enumerate(eps):
        month = 1 + i % 6
        for j, status in enumerate(["attended", "did_not_attend", "attended", "5", "2"]):
            rows.append(
                {
                    "session_id": f"s{i}-{j}",
                    "episode_id": f" {e} " if j == 1 else e,  # padding: the same episode
                    "scheduled_date": f"2024-0{month}-{10 + 7 * j:02d}",
                    "status": status,
                    "alliance_score": str(30 + (i + j) % 10),
                    "homework_completed": ["none", "partial", "full"][(i + j) % 3],
                }
            )
    rows.append({**rows[0], "session_id": "sdup", "episode_id": first})
    rows.append({**rows[1], "session_id": "sdup", "episode_id": other})  # duplicate_id
    rows.append({**rows[2], "session_id": "sx", "episode_id": "e99"})  # orphan
    rows.append({**rows[3], "session_id": "sf", "scheduled_date": "2025-06-01"})  # future
    sessions = pd.DataFrame(rows)
    measures = pd.DataFrame(
        {
            "episode_id": [e for e in eps for _ in range(3)] + ["e99", first],
            "measure_date": [f"2024-0{1 + i % 6}-{12 + 9 * k}" for i in range(12) for k in range(3)]
            + ["2024-02-01", "2024-01-20"],
            "instrument": ["PHQ-9"] * 38,
            "score": [str(20 - 3 * k + i % 4) for i in range(12) for k in range(3)] + ["9", "31"],
        }
    )
    goals = pd.DataFrame(
        {
            "goal_id": ["g1", "g2", "g1", "g3", "g4"],
            "episode_id": [first, "e2", other, "e99", "e4"],
            "set_date": ["2024-01-15", "2024-02-15", "2024-02-16", "2024-02-17", "2024-04-15"],
            "set_by": ["client", "clinician", "client", "client", "collaborative"],
        }
    )
    ratings = pd.DataFrame(
        {
            "goal_id": ["g1", "g1", "g2", "g3", "g9", "g4", "g4"],
            "rating_date": [
                "2024-01-15",
                "2024-02-01",
                "2024-02-20",
                "2024-02-20",
                "2024-02-20",
                "2024-04-16",
                "2024-05-01",
            ],
            "rating": ["3", "6", "4", "5", "5", "2", "11"],
        }
    )
    contacts = pd.DataFrame(
        {
            "episode_id": [first, first, "e4", "e99"],
            "contact_date": ["2024-01-12", "2024-01-13", "2024-04-20", "2024-02-02"],
            "direction": ["client_to_service", "service_to_client"] * 2,
            "responded": ["", "true", "", ""],
        }
    )
    folder = tmp_path / "awkward"
    folder.mkdir()
    for name, df in {
        "episodes": episodes,
        "measures": measures,
        "goals": goals,
        "goal_ratings": ratings,
        "contacts": contacts,
    }.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    lines = _csv(sessions)
    lines.insert(7, "")  # an empty line
    lines.insert(12, lines[12] + ",one field too many")  # a malformed line
    (folder / "sessions.csv").write_text("\n".join(lines) + "\n")
    return folder, (first, other)
