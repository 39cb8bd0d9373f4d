"""The two HTML reports from a built context: the Jinja environment, the technical
report's model sections (``catalog.SECTIONS``), shared model cards and the sentence on the
missing-data tipping point. Pure: text in, text out (the stage writes the files)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import markupsafe
import pandas as pd
import yaml

from pipeline.catalog import SECTIONS, section_tables
from pipeline.config import Params
from pipeline.disclosure import safe_card, safe_result_table
from pipeline.instruments import INSTRUMENTS, get_instrument
from pipeline.report import technical
from pipeline.report.build import card_absence, make_figures, pct

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIGURE_NAMES = ("calibration", "dose", "dropout", "flags", "levers", "signs")
UNUSED_PARAMS = {  # settings that do not describe this run: the input is named by its files
    "synthetic": None,
    "paths": ("raw_dir", "truth_dir", "input_dir"),
}


def params_used(params: Params) -> str:
    """The parameters as YAML, without those that do not describe this run (the synthetic
    generator's settings and the configured input folders)."""
    data = params.model_dump(mode="json")
    for section, keys in UNUSED_PARAMS.items():
        if keys is None:
            data.pop(section, None)
        else:
            for key in keys:
                data.get(section, {}).pop(key, None)
    return yaml.safe_dump(data, sort_keys=False)


def shared_card(card: dict, params: Params, records: list) -> dict:
    """A model card as the technical report shows it: disclosure-controlled, with what the
    export did not record that the model needed."""
    return safe_card(card, params.disclosure) | card_absence(card, records)


def html_table(name: str, table: pd.DataFrame, params: Params) -> str:
    """A result table, disclosure-controlled, as an HTML table."""
    safe = safe_result_table(table, params.disclosure, name)
    return safe.to_html(index=False, na_rep="", border=0)


SECTION_IDS = {  # technical report section → anchor (the checklist links to them)
    SECTIONS[0]: "models",
    SECTIONS[2]: "baseline",
    SECTIONS[8]: "prediction",
    SECTIONS[9]: "missing",
    SECTIONS[10]: "confounding",
}


def model_sections(tables: dict, params: Params) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Each section of the technical report (title, anchor) with the HTML of the tables it
    shows, each table in a frame that scrolls sideways on a narrow screen."""
    return [
        (
            title,
            SECTION_IDS.get(title, f"section-{i}"),
            [
                (n, '<div class="wide">' + html_table(n, tables[n], params) + "</div>")
                for n in section_tables(title)
                if n in tables
            ],
        )
        for i, title in enumerate(SECTIONS)
    ]


def tipping_text(missing: dict | None) -> str | None:
    """The clinician report's sentence on how far the missing final scores would have to
    be off for the conclusion to change (None when it does not hold to begin with)."""
    tip = missing["tipping"] if missing else None
    if tip is None or not tip["conclusion_holds_at_delta_0"].all():
        return None
    if tip["tipping_delta"].isna().all():
        limits = tip.set_index("direction")["grid_limit"]
        return (
            f"the conclusion held even if their scores had been up to "
            f"{abs(limits.get('negative', 0)):g} points better or "
            f"{abs(limits.get('positive', 0)):g} points worse than estimated"
        )
    nearest = tip.dropna(subset=["tipping_delta"])["tipping_delta"]
    d = nearest.iloc[int(nearest.abs().argmin())]
    side = "better" if d < 0 else "worse"
    return (
        f"the conclusion would change if their scores had been {abs(d):g} points "
        f"{side} than estimated"
    )


def environment() -> jinja2.Environment:
    """The templates, HTML-escaped, failing on any name the context does not give."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def render(
    ctx: dict, params: Params, tables: dict, cards: list[dict], metrics: dict, provenance: list
) -> tuple[str, str]:
    """The clinician and technical HTML."""
    env = environment()
    # a figure with nothing to draw (too few people, a block not in this export) is None
    common = {
        "css": markupsafe.Markup((TEMPLATES / "base.css").read_text(encoding="utf-8")),
        "figures": dict.fromkeys(FIGURE_NAMES) | make_figures(ctx),
        "generated": ctx["generated"],
        "threshold": ctx["threshold"],
        "rounding_base": ctx["rounding_base"],
        "pct": pct,
    }
    clinician = env.get_template("clinician.html.j2").render(
        **common,
        **{k: v for k, v in ctx.items() if k not in common},
        tipping_text=tipping_text(ctx["missing"]),
        plausible_auc_max=params.prediction.plausible_auc_max,
    )
    technical = env.get_template("technical.html.j2").render(
        **common,
        **technical_context(ctx, params, tables, cards, metrics),
        provenance=provenance,
    )
    return clinician, technical


def technical_context(
    ctx: dict, params: Params, tables: dict, cards: list[dict], metrics: dict
) -> dict:
    """What the technical template reads besides the shared part."""
    shared_cards = [shared_card(c, params, ctx["absent_records"]) for c in cards]
    primary_model = metrics.get("primary_model")
    return {
        "metrics": technical.metric_rows(metrics),  # metrics.json's order: the primary first
        "flow": ctx["flow"],
        "analysed": technical.analysed_by_model(shared_cards, primary_model),
        "basis": technical.model_basis(shared_cards),
        "methods": technical.methods(
            params,
            get_instrument(params.outcomes.primary_instrument),
            "prediction_temporal" in tables,
        ),
        "checklist": technical.checklist(),
        "plan": ctx["plan"],
        "primary": ctx["primary"],
        "model_sections": model_sections(tables, params),
        "cards": shared_cards,
        "window_days": params.features.window_days,
        "poor_outcome": params.outcomes.poor_outcome,
        "instrument": get_instrument(params.outcomes.primary_instrument),
        "alliance_cutoff": params.features.alliance_cutoff,
        "alliance_absent": "session alliance ratings" in ctx["not_recorded"],
        "instruments": [get_instrument(n) for n in INSTRUMENTS],
        "quarantine": ctx["quarantine"],
        "quarantine_total": ctx["quarantine_total"],
        "rows_read": ctx["rows_read"],
        "input_files": ctx["export"]["input_files"],
        "not_recorded": ctx["not_recorded"],
        "not_recorded_all": ctx["not_recorded_all"],
        "params_yaml": params_used(params),
    }
