"""Scores, grades and their explanations from the credit-records mart, by a points model of catalogs/scoring/.

One run scores every subject the model covers (registered subjects of its ``subject_kinds``) as of a
day, from that day's facts (``mart.credit_records``, built first unless told otherwise), and stores:

- ``mart.score_runs``: the run (model, day, counts);
- ``mart.scores``: per subject its score, grade by points, and grade after the model's limits;
- ``mart.score_lines``: the explanation. Per subject a ``base`` line, one ``fact`` line per record that
  scored (category points x decay factor), a ``measure`` line per range indicator (the value and the
  range it fell in), ``not_counted`` lines (0 points: repaired, expired, ... and why), ``cap`` lines
  where an indicator's cap held it, and a ``total_bound`` line where the total was held in bounds.
  The lines of a subject add up to its score, so an objection can be answered line by line.

Runs are exported to ``<data root>/mart/scores/run_id=<id>/{scores,score_lines}.parquet``. A past day
gives the same scores whenever it is run again: facts are rebuilt from the batches received by then.
The model is turned into small tables (indicators, categories, ranges, decay steps) bound as
parameters: the SQL is the same for every model and holds no value from a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from foundation.catalog import Catalog
from foundation.parquet_out import write_query
from foundation.scoring_model import Indicator, ScoringModel, ScoringModels
from foundation.settings import Settings
from warehouse.credit_records import build_credit_records, mart_dir

# Why a fact of an indicator did not count, for the explanation (publication statuses and windows).
NOT_COUNTED_ZH = {
    "repaired": "已信用修复，不再计入评价",
    "objection": "异议成立，不计入评价",
    "revoked": "决定已撤销，不计入评价",
    "expired": "公示期已满，不再计入评价",
    "list_exited": "已移出名单，不再计入评价",
    "minor_not_published": "轻微失信信息，按规则不计入",
    "unclassified": "严重程度未能判定，暂不计入（见发布审核发现）",
    "no_rule_version": "决定日期早于现行规则，暂不计入",
    "window": "超出统计时段，不计入",
}


@dataclass(frozen=True)
class ScoreRun:
    run_id: str
    model_id: str
    as_of: date
    subjects: int
    facts: int
    grades: dict[str, int]
    folder: Path | None


def run_scoring(con: duckdb.DuckDBPyConnection, catalog: Catalog, models: ScoringModels, as_of: date, *,
                model_id: str | None = None, settings: Settings | None = None, build_facts: bool = True,
                triggered_by: str | None = None) -> ScoreRun:
    """Score every subject as of ``as_of`` with the model in force that day (or ``model_id``)."""
    model = models.get(model_id) if model_id else models.in_force(as_of)
    started = datetime.now(UTC)
    facts = (build_credit_records(con, catalog, as_of, settings) if build_facts else
             con.execute("SELECT count(*) FROM mart.credit_records WHERE as_of = ?", [as_of]).fetchall()[0][0])
    _register_model(con, catalog, model)
    _score(con, model, as_of)
    run_id = _next_run_id(con, model.id, as_of)
    subjects = con.execute("SELECT count(*) FROM run_scores").fetchall()[0][0]
    con.execute("BEGIN")
    try:
        con.execute("INSERT INTO mart.scores SELECT ?, subject_key, score, grade, grade_by_points, grade_limit_zh "
                    "FROM run_scores ORDER BY subject_key", [run_id])
        con.execute("INSERT INTO mart.score_lines SELECT ?, * FROM run_lines ORDER BY subject_key, line_no",
                    [run_id])
        con.execute("INSERT INTO mart.score_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, model.id, as_of, started, datetime.now(UTC), subjects, facts, triggered_by])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    grades = dict(con.execute("SELECT grade, count(*) FROM run_scores GROUP BY grade ORDER BY grade").fetchall())
    folder = export_run(con, settings, run_id) if settings is not None else None
    con.execute("DROP TABLE run_scores; DROP TABLE run_lines; DROP TABLE run_facts")
    return ScoreRun(run_id, model.id, as_of, int(subjects), int(facts), grades, folder)


def export_run(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> Path:
    """A run's scores (with the subject's code and name, model and day) and lines as Parquet."""
    folder = mart_dir(settings) / "scores" / f"run_id={run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    queries = {
        "scores.parquet": """
            SELECT r.run_id, r.model_id, r.as_of, s.subject_key, sub.uscc, sub.name AS subject_name, s.score,
                s.grade, s.grade_by_points, s.grade_limit_zh
            FROM mart.scores s JOIN mart.score_runs r USING (run_id) LEFT JOIN clean.subjects sub USING (subject_key)
            WHERE run_id = $run_id ORDER BY s.subject_key""",
        "score_lines.parquet": "SELECT * FROM mart.score_lines WHERE run_id = $run_id ORDER BY subject_key, line_no",
    }
    for name, sql in queries.items():
        tmp = folder / f"{name}.tmp"
        write_query(con, sql, {"run_id": run_id}, tmp)
        os.replace(tmp, folder / name)
    return folder


def latest_run(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> str | None:
    """The newest run (on or before ``as_of``: the latest day, then the latest finished)."""
    rows = con.execute("SELECT run_id FROM mart.score_runs WHERE $as_of IS NULL OR as_of <= $as_of "
                       "ORDER BY as_of DESC, finished_at DESC LIMIT 1", {"as_of": as_of}).fetchall()
    return rows[0][0] if rows else None


def _next_run_id(con: duckdb.DuckDBPyConnection, model_id: str, as_of: date) -> str:
    prefix = f"{as_of:%Y%m%d}-{model_id}-"
    (n,) = con.execute("SELECT count(*) FROM mart.score_runs WHERE starts_with(run_id, ?)", [prefix]).fetchall()[0]
    return f"{prefix}{n + 1:02d}"


def _fact_kind(catalog: Catalog, ind: Indicator, dataset_id: str) -> str:
    if ind.fact_kind:
        return ind.fact_kind
    credit = catalog.datasets[dataset_id].credit
    assert credit is not None  # checked when the model loads
    return "register" if credit.fact == "register" else "record"


def _register_model(con: duckdb.DuckDBPyConnection, catalog: Catalog, model: ScoringModel) -> None:
    """The model as temp tables: score_indicators, score_ind_datasets, score_categories, score_ranges,
    score_decay, score_grades, score_limits."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE score_indicators (indicator_id VARCHAR, dimension_id VARCHAR, ord INTEGER,
            by_kind VARCHAR, category_of VARCHAR, measure_kind VARCHAR, statuses VARCHAR[], window_months INTEGER,
            cap DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_ind_datasets (indicator_id VARCHAR, dataset_id VARCHAR, fact_kind VARCHAR);
        CREATE OR REPLACE TEMP TABLE score_categories (indicator_id VARCHAR, category VARCHAR, points DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_ranges (indicator_id VARCHAR, low DOUBLE, high DOUBLE, points DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_decay (indicator_id VARCHAR, lo INTEGER, hi INTEGER, factor DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_grades (grade VARCHAR, rank INTEGER, min_score DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_limits (datasets VARCHAR[], statuses VARCHAR[], grade VARCHAR,
            rank INTEGER, reason_zh VARCHAR);""")
    ord_ = 0
    for dim in model.dimensions:
        for ind in dim.indicators:
            ord_ += 1
            con.execute("INSERT INTO score_indicators VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [ind.id, dim.id, ord_, ind.by, ind.category_of, ind.measure, ind.statuses,
                         ind.window_months, ind.cap])
            for ds_id in ind.datasets:
                con.execute("INSERT INTO score_ind_datasets VALUES (?, ?, ?)",
                            [ind.id, ds_id, _fact_kind(catalog, ind, ds_id)])
            for category, points in ind.categories.items():
                con.execute("INSERT INTO score_categories VALUES (?, ?, ?)", [ind.id, category, points])
            for r in ind.ranges:
                con.execute("INSERT INTO score_ranges VALUES (?, ?, ?, ?)", [ind.id, r.low, r.high, r.points])
            lo = 0
            for step in ind.decay:
                con.execute("INSERT INTO score_decay VALUES (?, ?, ?, ?)", [ind.id, lo, step.under_months, step.factor])
                lo = step.under_months or lo
    for rank, g in enumerate(model.grades):
        con.execute("INSERT INTO score_grades VALUES (?, ?, ?)", [g.grade, rank, g.min_score])
    for limit in model.grade_limits:
        con.execute("INSERT INTO score_limits VALUES (?, ?, ?, ?, ?)",
                    [limit.datasets, limit.statuses, limit.grade, model.grade_rank(limit.grade), limit.reason_zh])


def _score(con: duckdb.DuckDBPyConnection, model: ScoringModel, as_of: date) -> None:
    """Temp tables run_facts, run_lines (the explanation) and run_scores."""
    kinds = model.subject_kinds
    bind = {"as_of": as_of, "persons": "natural_person" in kinds, "entities": "legal_entity" in kinds}
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_subjects AS
    SELECT DISTINCT subject_key FROM mart.credit_records
    WHERE as_of = $as_of AND fact_kind = 'register'
      AND (CASE WHEN starts_with(subject_key, 'P:') THEN $persons
                WHEN starts_with(subject_key, 'N:') THEN false ELSE $entities END)""", bind)
    # Full months from the decision date to the as-of day: the most months that, added to the decision date,
    # do not pass the day (to_months takes a missing day to the month's last, as publication periods count).
    age = ("(date_diff('month', f.decided, $as_of) - CASE WHEN f.decided + to_months(date_diff('month', f.decided, "
           "$as_of)) > $as_of THEN 1 ELSE 0 END)")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE run_facts AS
    SELECT f.subject_key, f.record_id, f.dataset_id, f.document, f.decided, f.status, f.measure,
        i.indicator_id, i.dimension_id, i.ord, i.by_kind, i.measure_kind, i.cap,
        CASE i.category_of WHEN 'severity' THEN f.severity WHEN 'kind' THEN f.record_kind
                           WHEN 'polarity' THEN f.polarity END AS category,
        {age} AS age_months,
        list_contains(i.statuses, f.status) AS status_counts,
        i.window_months IS NULL OR ({age} IS NOT NULL AND {age} < i.window_months) AS in_window
    FROM mart.credit_records f
    JOIN run_subjects USING (subject_key)
    JOIN score_ind_datasets d ON d.dataset_id = f.dataset_id AND d.fact_kind = f.fact_kind
    JOIN score_indicators i ON i.indicator_id = d.indicator_id
    WHERE f.as_of = $as_of
    """, {"as_of": as_of})
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_parts AS
    WITH scored AS (  -- category indicators: a line per fact whose category has points
        SELECT f.*, c.points AS raw_points, coalesce(d.factor, 1.0) AS factor,
            round(c.points * coalesce(d.factor, 1.0), 2) AS points
        FROM run_facts f JOIN score_categories c ON c.indicator_id = f.indicator_id AND c.category = f.category
        LEFT JOIN score_decay d ON d.indicator_id = f.indicator_id AND f.age_months >= d.lo
            AND (d.hi IS NULL OR f.age_months < d.hi)
        WHERE f.by_kind = 'category'
    ), measured AS (  -- range indicators: the measure over the counted facts
        SELECT subject_key, indicator_id, any_value(dimension_id) AS dimension_id, any_value(ord) AS ord,
            any_value(cap) AS cap,
            CASE any_value(measure_kind) WHEN 'count' THEN count(*)::DOUBLE WHEN 'max' THEN max(measure)
                 WHEN 'age_years' THEN floor(arg_max(age_months, decided) / 12) END AS value
        FROM run_facts WHERE by_kind = 'range' AND status_counts AND in_window
        GROUP BY subject_key, indicator_id
        UNION ALL  -- a count of nothing is 0 (a line only where a range holds for 0)
        SELECT s.subject_key, i.indicator_id, i.dimension_id, i.ord, i.cap, 0
        FROM run_subjects s CROSS JOIN score_indicators i
        WHERE i.by_kind = 'range' AND i.measure_kind = 'count' AND NOT EXISTS (
            SELECT 1 FROM run_facts f WHERE f.subject_key = s.subject_key AND f.indicator_id = i.indicator_id
              AND f.status_counts AND f.in_window)
    )
    SELECT subject_key, 'fact' AS line_kind, dimension_id, indicator_id, ord, record_id, dataset_id, document,
        decided, status, category, age_months, NULL::DOUBLE AS measure, raw_points, factor, points, cap,
        NULL::VARCHAR AS note
    FROM scored WHERE status_counts AND in_window
    UNION ALL
    SELECT subject_key, 'not_counted', dimension_id, indicator_id, ord, record_id, dataset_id, document, decided,
        status, category, age_months, NULL, raw_points, NULL, 0, cap,
        CASE WHEN status_counts THEN 'window' ELSE status END
    FROM scored WHERE NOT (status_counts AND in_window)
    UNION ALL
    SELECT m.subject_key, 'measure', m.dimension_id, m.indicator_id, m.ord, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, m.value, r.points, NULL, coalesce(r.points, 0), m.cap, NULL
    FROM measured m LEFT JOIN score_ranges r ON r.indicator_id = m.indicator_id AND m.value >= r.low
        AND (r.high IS NULL OR m.value < r.high)
    WHERE m.value <> 0 OR r.points IS NOT NULL
    """)
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_caps AS
    SELECT subject_key, dimension_id, indicator_id, any_value(ord) AS ord, sum(points) AS total,
        greatest(-any_value(cap), least(any_value(cap), sum(points))) - sum(points) AS adjust
    FROM run_parts WHERE cap IS NOT NULL GROUP BY subject_key, dimension_id, indicator_id
    HAVING abs(sum(points)) > any_value(cap)
    """)
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_totals AS
    SELECT s.subject_key, $base + coalesce(p.points, 0) + coalesce(c.adjust, 0) AS raw_total
    FROM run_subjects s
    LEFT JOIN (SELECT subject_key, sum(points) AS points FROM run_parts GROUP BY ALL) p USING (subject_key)
    LEFT JOIN (SELECT subject_key, sum(adjust) AS adjust FROM run_caps GROUP BY ALL) c USING (subject_key)
    """, {"base": model.base})
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_lines AS
    WITH lines AS (
        SELECT subject_key, 0 AS grp, 0 AS ord, 'base' AS line_kind, NULL AS dimension_id, NULL AS indicator_id,
            NULL AS record_id, NULL AS dataset_id, NULL AS document, NULL::DATE AS decided, NULL AS status,
            NULL AS category, NULL::INTEGER AS age_months, NULL::DOUBLE AS measure, NULL::DOUBLE AS raw_points,
            NULL::DOUBLE AS factor, $base::DOUBLE AS points, NULL AS note, 0 AS sub
        FROM run_subjects
        UNION ALL
        SELECT subject_key, 1, ord, line_kind, dimension_id, indicator_id, record_id, dataset_id, document, decided,
            status, category, age_months, measure, raw_points, factor, points, note,
            CASE line_kind WHEN 'measure' THEN 0 WHEN 'fact' THEN 1 ELSE 2 END
        FROM run_parts
        UNION ALL
        SELECT subject_key, 1, ord, 'cap', dimension_id, indicator_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            total, NULL, NULL, round(adjust, 2), NULL, 3
        FROM run_caps
        UNION ALL
        SELECT subject_key, 2, 0, 'total_bound', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, raw_total,
            NULL, NULL, round(greatest($min, least($max, raw_total)) - raw_total, 2), NULL, 0
        FROM run_totals WHERE raw_total < $min OR raw_total > $max
    )
    SELECT subject_key,
        row_number() OVER (PARTITION BY subject_key ORDER BY grp, ord, sub, decided DESC NULLS LAST, record_id)::INTEGER
            AS line_no,
        line_kind, dimension_id, indicator_id, record_id, dataset_id, document, decided, status, category,
        age_months, measure, raw_points, factor, points, note AS note_zh
    FROM lines
    """, {"base": model.base, "min": model.total.min, "max": model.total.max})
    for status, text in NOT_COUNTED_ZH.items():
        con.execute("UPDATE run_lines SET note_zh = ? WHERE line_kind = 'not_counted' AND note_zh = ?", [text, status])
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_scores AS
    WITH totals AS (
        SELECT subject_key, round(sum(points), 2) AS score FROM run_lines GROUP BY subject_key
    ), by_points AS (
        SELECT t.subject_key, t.score, arg_min(g.rank, g.rank) AS rank
        FROM totals t JOIN score_grades g ON t.score >= g.min_score GROUP BY ALL
    ), limits AS (
        SELECT f.subject_key, max(l.rank) AS rank, arg_max(l.reason_zh, l.rank) AS reason_zh
        FROM mart.credit_records f JOIN run_subjects USING (subject_key)
        JOIN score_limits l ON list_contains(l.datasets, f.dataset_id) AND list_contains(l.statuses, f.status)
        WHERE f.as_of = $as_of GROUP BY f.subject_key
    )
    SELECT b.subject_key, b.score, g.grade, gp.grade AS grade_by_points,
        CASE WHEN l.rank > b.rank THEN l.reason_zh END AS grade_limit_zh
    FROM by_points b LEFT JOIN limits l USING (subject_key)
    JOIN score_grades g ON g.rank = greatest(b.rank, coalesce(l.rank, b.rank))
    JOIN score_grades gp ON gp.rank = b.rank
    """, {"as_of": as_of})
    con.execute("DROP TABLE run_parts; DROP TABLE run_caps; DROP TABLE run_totals; DROP TABLE run_subjects")
