"""Credit warnings (信用预警) and repair guidance (信用修复指导) from the credit-records mart.

A subject goes on the list as of a day when it has ``threshold`` or more negative records of the
warning datasets whose status that day is one of ``statuses`` (catalogs/credit_warnings.yaml): by
default published, i.e. not repaired, revoked, objected to, expired or exited. Each of its records
says whether it can be repaired early under the rule version governing it (publication.yaml, the
version the publication engine chose: the same one the repair check at load applies), from which
day, and the steps the subject must take.

``mart.credit_warnings`` keeps one list per as-of day (a run replaces that day's); it is exported to
``<data root>/mart/credit_warnings/as_of=<day>/credit_warnings.parquet``. ``guidance_by_year`` counts,
per year, the subjects guided (on any list of a day in that year) and the repairs completed, against
the seed's annual target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from foundation.catalog import Catalog
from foundation.scoring_model import WarningRules
from foundation.settings import Settings
from warehouse.credit_records import mart_dir, write_mart_file
from warehouse.public_records import register_terms


@dataclass(frozen=True)
class YearGuidance:
    year: int
    subjects_guided: int
    repairs_completed: int
    repairs_by_guided: int
    target: int

    @property
    def meets(self) -> bool:
        return self.subjects_guided >= self.target

    @property
    def share(self) -> float | None:
        return self.subjects_guided / self.target if self.target else None


def build_warnings(con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: WarningRules, as_of: date,
                   settings: Settings | None = None) -> int:
    """The warning list as of ``as_of`` from that day's facts (``mart.credit_records``); returns the
    number of subjects on it."""
    register_terms(con, catalog.publication)
    kinds = rules.subject_kinds
    params = {"as_of": as_of, "datasets": rules.datasets, "statuses": rules.statuses, "threshold": rules.threshold,
              "persons": "natural_person" in kinds, "entities": "legal_entity" in kinds,
              "step_ds": list(rules.steps), "steps": list(rules.steps.values())}
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM mart.credit_warnings WHERE as_of = ?", [as_of])
        con.execute("""
        INSERT INTO mart.credit_warnings
        WITH counted AS (
            SELECT f.*, count(*) OVER (PARTITION BY f.subject_key) AS records
            FROM mart.credit_records f
            WHERE f.as_of = $as_of AND f.polarity = 'negative' AND list_contains($datasets, f.dataset_id)
              AND list_contains($statuses, f.status)
              AND (CASE WHEN starts_with(f.subject_key, 'P:') THEN $persons
                        WHEN starts_with(f.subject_key, 'N:') THEN false ELSE $entities END)
        )
        SELECT $as_of, c.subject_key, c.records, c.record_id, c.dataset_id, c.document, c.decided, c.severity,
            c.rule_version, c.published_until, t.repairable,
            CASE WHEN t.repairable THEN (c.decided + to_months(t.min_months))::DATE END,
            coalesce($steps[list_position($step_ds, c.dataset_id)], [])
        FROM counted c
        LEFT JOIN pub_terms t ON t.version_id = c.rule_version AND t.severity = c.severity
        WHERE c.records >= $threshold
        ORDER BY c.subject_key, c.decided, c.record_id""", params)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    (subjects,) = con.execute("SELECT count(DISTINCT subject_key) FROM mart.credit_warnings WHERE as_of = ?",
                              [as_of]).fetchall()[0]
    if settings is not None:
        export_warnings(con, settings, as_of)
    return int(subjects)


def export_warnings(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date) -> Path:
    """The day's list with the subject's code and name, as one Parquet file."""
    return write_mart_file(con, """
        SELECT w.as_of, w.subject_key, s.uscc, s.name AS subject_name, w.* EXCLUDE (as_of, subject_key)
        FROM mart.credit_warnings w LEFT JOIN clean.subjects s USING (subject_key)
        WHERE w.as_of = $as_of ORDER BY w.subject_key, w.decided, w.record_id""", {"as_of": as_of},
        mart_dir(settings) / "credit_warnings" / f"as_of={as_of.isoformat()}" / "credit_warnings.parquet")


def guidance_by_year(con: duckdb.DuckDBPyConnection, rules: WarningRules, as_of: date,
                     repair_dataset: str = "credit_repair", repair_kind: str = "信用修复") -> list[YearGuidance]:
    """Per year up to ``as_of``: subjects on any warning list of a day in that year (guidance given),
    repairs completed (``repair_kind`` facts of the repair dataset dated in that year, as of ``as_of``)
    and how many of those were by subjects warned before the repair."""
    rows = con.execute("""
    WITH guided AS (
        SELECT year(as_of) AS year, subject_key, min(as_of) AS first_warned
        FROM mart.credit_warnings WHERE as_of <= $as_of GROUP BY ALL
    ), repairs AS (
        SELECT year(decided) AS year, subject_key, decided
        FROM mart.credit_records
        WHERE as_of = (SELECT max(as_of) FROM mart.credit_records WHERE as_of <= $as_of)
          AND dataset_id = $repair_dataset AND record_kind = $repair_kind AND decided <= $as_of
    ), years AS (SELECT year FROM guided UNION SELECT year FROM repairs)
    SELECT y.year,
        (SELECT count(*) FROM guided g WHERE g.year = y.year),
        (SELECT count(*) FROM repairs r WHERE r.year = y.year),
        (SELECT count(*) FROM repairs r WHERE r.year = y.year AND EXISTS (
            SELECT 1 FROM mart.credit_warnings w WHERE w.subject_key = r.subject_key AND w.as_of <= r.decided))
    FROM years y ORDER BY y.year""", {"as_of": as_of, "repair_dataset": repair_dataset,
                                      "repair_kind": repair_kind}).fetchall()
    return [YearGuidance(int(y), int(g), int(r), int(rg), rules.annual_target) for y, g, r, rg in rows]
