"""The shell every stage shares (pipeline/stages/common.py)."""

from __future__ import annotations

import json
import time

from pipeline import catalog
from pipeline.config import parse_params
from pipeline.stages.common import stage


def test_each_step_time_goes_to_the_stage_log(tmp_path):
    with stage("models", parse_params({}), tmp_path, steps=2) as s:
        s.step("first")
        time.sleep(0.05)
        s.step("second")
    log = json.loads(catalog.stage_log("models").path(s.paths).read_text())
    steps = log["step_seconds"]
    assert list(steps) == ["first", "second"]
    assert steps["second"] >= 0.05 > steps["first"]
    assert sum(steps.values()) <= log["seconds"]


def test_a_stage_without_steps_logs_none(tmp_path):
    with stage("ingest", parse_params({}), tmp_path) as s:
        s.summary["rows"] = 0
    log = json.loads(catalog.stage_log("ingest").path(s.paths).read_text())
    assert "step_seconds" not in log and log["seconds"] >= 0
