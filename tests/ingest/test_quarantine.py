"""Quarantine reasons per row: every distinct rule and column, sorted, joined once."""

import pandas as pd

from pipeline.ingest.quarantine import _joined


def _problems(rows):
    return pd.DataFrame(rows, columns=["row", "column", "rule"])


def test_reasons_are_distinct_sorted_and_joined_per_row():
    problems = _problems(
        [
            (7, "status", "unknown_category"),
            (2, "score", "out_of_range"),
            (7, "episode_id", "orphan_episode"),
            (7, "status", "unknown_category"),  # the same reason twice: listed once
            (2, "score", "missing_required"),
        ]
    )
    assert _joined(problems, "rule").to_dict() == {
        2: "missing_required;out_of_range",
        7: "orphan_episode;unknown_category",
    }
    assert _joined(problems, "column").to_dict() == {2: "score", 7: "episode_id;status"}


def test_more_distinct_values_than_bits_are_joined_the_same_way():
    """Beyond 62 distinct values the bit-mask shortcut cannot hold a row's set; the
    fallback must give the same strings as it would."""
    many = [(r, f"col_{c:03d}", "rule") for r in range(3) for c in range(70) if (r + c) % 3]
    expected = {
        r: ";".join(sorted(f"col_{c:03d}" for c in range(70) if (r + c) % 3)) for r in range(3)
    }
    assert _joined(_problems(many), "column").to_dict() == expected
    few = [(r, c, rule) for r, c, rule in many if c < "col_020"]
    expected_few = {r: ";".join(sorted(c for rr, c, _ in few if rr == r)) for r in range(3)}
    assert _joined(_problems(few), "column").to_dict() == expected_few
