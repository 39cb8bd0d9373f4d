"""Optional HMAC re-keying: source ids never reach the outputs, joins still hold."""

import pandas as pd
import pytest

from pipeline.config import Params
from pipeline.ingest.read import InputError
from pipeline.stages import ingest as stage


def _params(**ingest):
    return Params(ingest={"extract_date": "2024-06-30", **ingest})


def test_rekey_without_key_is_a_clear_error(make_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("ENGAGE_REKEY_KEY", raising=False)
    with pytest.raises(InputError, match="ENGAGE_REKEY_KEY"):
        stage.run(_params(rekey=True), tmp_path, make_dataset())
    assert not (tmp_path / "data" / "interim").exists()


def test_rekeyed_outputs_hold_no_source_ids_and_join(make_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("ENGAGE_REKEY_KEY", "a-long-test-secret-of-32-characters!")
    stage.run(_params(rekey=True), tmp_path, make_dataset())
    interim = tmp_path / "data" / "interim"
    episodes = pd.read_parquet(interim / "episodes.parquet")
    sessions = pd.read_parquet(interim / "sessions.parquet")
    assert not set(episodes["episode_id"]) & {"e1", "e2"}
    assert not set(sessions["session_id"]) & {"s1", "s2", "s3"}
    assert set(sessions["episode_id"]) <= set(episodes["episode_id"])
    assert episodes["episode_id"].str.fullmatch(r"[0-9a-f]{20}").all()
    # Same key, same tokens (deterministic); another key, other tokens.
    stage.run(_params(rekey=True), tmp_path / "again", make_dataset("again"))
    again = pd.read_parquet(tmp_path / "again/data/interim/episodes.parquet")
    assert list(again["episode_id"]) == list(episodes["episode_id"])
    monkeypatch.setenv("ENGAGE_REKEY_KEY", "another-long-secret-of-32-characters")
    stage.run(_params(rekey=True), tmp_path / "other", make_dataset("other"))
    other = pd.read_parquet(tmp_path / "other/data/interim/episodes.parquet")
    assert not set(other["episode_id"]) & set(episodes["episode_id"])
