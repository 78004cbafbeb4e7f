"""One scoring job as of a day: credit-records mart, scores with explanations, credit warnings.

What ``credit score`` and the ``credit_scoring`` DAG run. Every model file, the warning rules and
the measures are loaded and validated first: a malformed file stops the job with a message naming
the file and the indicator before anything is written. Then, in the warehouse: the day's facts
(``mart.credit_records``), a score run (``mart.scores`` / ``mart.score_lines``) and the day's warning
list (``mart.credit_warnings``), each exported to Parquet under ``<data root>/mart/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from foundation.catalog import Catalog
from foundation.scoring_model import load_measures, load_scoring_models, load_warning_rules
from foundation.settings import Settings
from warehouse.credit_records import build_credit_records
from warehouse.credit_warnings import YearGuidance, build_warnings, guidance_by_year
from warehouse.db import open_warehouse
from warehouse.scoring import ScoreRun, run_scoring


@dataclass(frozen=True)
class ScoringOutcome:
    as_of: date
    facts: int
    run: ScoreRun
    warned: int
    guidance: list[YearGuidance]


def score_days(settings: Settings, catalog: Catalog, days: list[date], *, model_id: str | None = None,
               triggered_by: str | None = None,
               progress: Callable[[date], None] | None = None) -> list[ScoringOutcome]:
    """Score each of ``days`` (in order) with the model in force that day, or ``model_id``."""
    models = load_scoring_models(catalog, settings.catalog_dir)
    rules = load_warning_rules(catalog, settings.catalog_dir)
    load_measures(catalog, models, settings.catalog_dir)  # validated now: the credit check reads it
    for day in days:  # a day no model covers fails here, before anything is written
        models.get(model_id) if model_id else models.in_force(day)
    outcomes = []
    with open_warehouse(settings, catalog) as con:
        for day in days:
            facts = build_credit_records(con, catalog, day, settings)
            run = run_scoring(con, catalog, models, day, model_id=model_id, settings=settings, build_facts=False,
                              triggered_by=triggered_by)
            warned = build_warnings(con, catalog, rules, day, settings)
            outcomes.append(ScoringOutcome(day, facts, run, warned, guidance_by_year(con, rules, day)))
            if progress:
                progress(day)
    return outcomes
