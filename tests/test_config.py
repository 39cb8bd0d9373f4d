from pathlib import Path

import pytest

from pipeline.config import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_load_and_match_defaults():
    params = load_params(ROOT / "params.yaml")
    assert params.synthetic.n_episodes == 4000
    assert str(params.synthetic.extract_date) == "2025-03-31"
    assert params.paths.raw_dir == "data/raw/synthetic"


def test_params_yaml_is_exactly_the_typed_defaults():
    # Every setting, not a sample: params.yaml documents the defaults, so a default
    # changed in code (or a value changed in the file) must be changed in both.
    import yaml

    from pipeline.config import Params

    in_file = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert load_params(ROOT / "params.yaml") == Params()
    defaults = Params().model_dump(mode="json")
    assert parse_params(in_file).model_dump(mode="json") == defaults

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and prefix + k != "ingest.aliases":  # codes: data, not keys
                out |= keys(v, f"{prefix}{k}.")
        return out

    # and the file spells out every key (nothing left to a silent default)
    missing = keys(defaults) - keys(in_file)
    assert not missing, f"params.yaml does not list: {sorted(missing)}"


def test_unknown_key_fails_with_its_path():
    with pytest.raises(ParamsError, match=r"synthetic\.n_episode"):
        parse_params({"synthetic": {"n_episode": 10}})


def test_wrong_type_fails_with_its_path():
    with pytest.raises(ParamsError, match=r"synthetic\.seed"):
        parse_params({"synthetic": {"seed": "abc"}})


def test_out_of_range_value_fails():
    with pytest.raises(ParamsError, match="messy_row_share"):
        parse_params({"synthetic": {"messy_row_share": 2}})


def test_params_are_frozen():
    params = parse_params({})
    with pytest.raises(Exception, match="frozen"):
        params.synthetic.seed = 3  # type: ignore[misc]


def test_missing_file_message(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_invalid_yaml_message(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("synthetic: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_every_feature_the_params_name_is_one_the_pipeline_builds(small_cohort):
    # Feature names are typed in the params (which features to model, flag, impute with);
    # the features themselves are declared by the feature modules. A name in one that the
    # other does not build would silently drop a predictor.
    import pandas as pd

    from pipeline.config import Params
    from pipeline.features.build import engagement_features

    p = Params()
    built = set(
        engagement_features(
            small_cohort.tables,
            p.features,
            p.outcomes.primary_instrument,
            pd.Timestamp(p.synthetic.extract_date),
        ).columns
    )
    named = {c for cols in p.models.blocks.values() for c in cols}
    named |= set(p.models.flags)
    named |= {c for cols in p.prediction.blocks.values() for c in cols}
    missing = sorted(named - built)
    assert not missing, f"params name features the pipeline does not build: {missing}"
    window = {c for c in p.missing_data.auxiliaries if c in built}
    assert {"attendance_rate", "alliance_mean", "early_change_primary"} <= window


@pytest.mark.parametrize(
    ("analysis", "outcomes", "message"),
    [
        ({"primary": {"outcome": "final_score", "exposure": "nonsense"}}, {}, "not a block"),
        (
            {"primary": {"outcome": "final_score", "exposure": "attendance"}, "secondary": []},
            {},
            "has 3 terms",
        ),
        ({"primary": {"outcome": "final_score", "exposure": "flags group"}}, {}, "has 1 terms"),
        (
            {"primary": {"outcome": "poor_outcome", "exposure": "index", "model": "cox"}},
            {},
            "analysed by logistic",
        ),
        (
            {"primary": {"outcome": "final_score", "exposure": "index", "population": "caseness"}},
            {"population": "all"},
            "differs from outcomes.population",
        ),
        (
            {"secondary": [{"outcome": "dropout", "exposure": "goals"}]},
            {},
            "index and the flags group only",
        ),
        (
            {"secondary": [{"outcome": "final_score", "exposure": "index"}]},
            {},
            "declared more than once",
        ),
    ],
)
def test_a_declared_analysis_the_models_cannot_fit_fails_with_a_clear_message(
    analysis, outcomes, message
):
    with pytest.raises(ParamsError, match=message):
        parse_params({"analysis": analysis, "outcomes": outcomes})


def test_the_default_plan_has_one_primary_test_and_a_secondary_family():
    from pipeline.config import Params

    plan = Params().analysis
    assert plan.primary.label == "final_score: index" and plan.primary.model == "ancova"
    assert plan.multiplicity == "holm" and len(plan.secondary) == 6
