"""The contract: one declaration in code, and the user docs generated from it."""

from pathlib import Path

from pipeline.contract import SCHEMAS, TABLE_RULES, column_specs
from pipeline.docs import render_contract_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_data_contract_matches_the_code():
    committed = (ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert committed == render_contract_markdown(), "stale docs: run `engage docs`"


def test_required_columns_per_table():
    required = {t: [c.name for c in column_specs(t) if c.required] for t in SCHEMAS}
    assert required == {
        "episodes": ["episode_id", "client_id", "referral_date"],
        "sessions": ["session_id", "episode_id", "scheduled_date", "status"],
        "measures": ["episode_id", "measure_date", "instrument", "score"],
        "goals": ["goal_id", "episode_id", "set_date", "set_by"],
        "goal_ratings": ["goal_id", "rating_date", "rating"],
        "contacts": ["episode_id", "contact_date", "direction"],
    }


def test_allowed_values_and_ranges_are_declared():
    sessions = {c.name: c for c in column_specs("sessions")}
    assert sessions["status"].allowed == (
        "attended",
        "did_not_attend",
        "cancelled_by_client",
        "cancelled_by_service",
    )
    assert (sessions["duration_min"].minimum, sessions["duration_min"].maximum) == (1, 240)
    assert (sessions["alliance_score"].minimum, sessions["alliance_score"].maximum) == (0, 40)
    episodes = {c.name: c for c in column_specs("episodes")}
    assert episodes["episode_id"].unique and episodes["planned_sessions"].kind == "integer"


def test_every_table_rule_names_a_contract_table():
    assert {r.table for r in TABLE_RULES} <= set(SCHEMAS)
