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

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from foundation.catalog import Catalog
from foundation.scoring_model import Indicator, ScoringModel, ScoringModels
from foundation.settings import Settings
from warehouse.credit_records import build_credit_records, mart_dir, write_mart_file

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
                    "FROM run_scores ORDER BY sid", [run_id])
        _insert_lines(con, model, run_id)
        con.execute("INSERT INTO mart.score_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, model.id, as_of, started, datetime.now(UTC), subjects, facts, triggered_by])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    grades = dict(con.execute("SELECT grade, count(*) FROM run_scores GROUP BY grade ORDER BY grade").fetchall())
    con.execute("DROP TABLE run_scores; DROP TABLE run_parts; DROP TABLE run_subjects")
    folder = export_run(con, settings, run_id) if settings is not None else None
    return ScoreRun(run_id, model.id, as_of, int(subjects), int(facts), grades, folder)


def export_run(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> Path:
    """A run's scores (with the subject's code and name, model and day) and lines as Parquet."""
    folder = mart_dir(settings) / "scores" / f"run_id={run_id}"
    queries = {
        "scores.parquet": """
            SELECT r.run_id, r.model_id, r.as_of, s.subject_key, sub.uscc, sub.name AS subject_name, s.score,
                s.grade, s.grade_by_points, s.grade_limit_zh
            FROM mart.scores s JOIN mart.score_runs r USING (run_id) LEFT JOIN clean.subjects sub USING (subject_key)
            WHERE run_id = $run_id ORDER BY s.subject_key""",
        "score_lines.parquet": "SELECT * FROM mart.score_lines WHERE run_id = $run_id ORDER BY subject_key, line_no",
    }
    for name, sql in queries.items():
        write_mart_file(con, sql, {"run_id": run_id}, folder / name)
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
    """The model as small temp tables keyed by the indicator's place (``ord``): score_indicators,
    score_ind_datasets, score_statuses, score_categories, score_ranges, score_decay, score_grades, score_limits."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE score_indicators (ord INTEGER, indicator_id VARCHAR, dimension_id VARCHAR,
            by_kind VARCHAR, category_of VARCHAR, measure_kind VARCHAR, window_months INTEGER, cap DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_ind_datasets (ord INTEGER, dataset_id VARCHAR, fact_kind VARCHAR);
        CREATE OR REPLACE TEMP TABLE score_statuses (ord INTEGER, status VARCHAR);
        CREATE OR REPLACE TEMP TABLE score_categories (ord INTEGER, category VARCHAR, points DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_ranges (ord INTEGER, low DOUBLE, high DOUBLE, points DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_decay (ord INTEGER, lo INTEGER, hi INTEGER, factor DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_grades (grade VARCHAR, rank INTEGER, min_score DOUBLE);
        CREATE OR REPLACE TEMP TABLE score_limits (datasets VARCHAR[], statuses VARCHAR[], grade VARCHAR,
            rank INTEGER, reason_zh VARCHAR);""")
    rows: dict[str, list] = {name: [] for name in ("indicators", "ind_datasets", "statuses", "categories", "ranges",
                                                   "decay")}
    ord_ = 0
    for dim in model.dimensions:
        for ind in dim.indicators:
            ord_ += 1
            rows["indicators"].append([ord_, ind.id, dim.id, ind.by, ind.category_of, ind.measure, ind.window_months,
                                       ind.cap])
            rows["ind_datasets"] += [[ord_, ds_id, _fact_kind(catalog, ind, ds_id)] for ds_id in ind.datasets]
            rows["statuses"] += [[ord_, status] for status in ind.statuses]
            rows["categories"] += [[ord_, category, points] for category, points in ind.categories.items()]
            rows["ranges"] += [[ord_, r.low, r.high, r.points] for r in ind.ranges]
            lo = 0
            for step in ind.decay:
                rows["decay"].append([ord_, lo, step.under_months, step.factor])
                lo = step.under_months or lo
    for name, values in rows.items():
        if values:
            marks = ", ".join("?" * len(values[0]))
            con.executemany(f"INSERT INTO score_{name} VALUES ({marks})", values)
    con.executemany("INSERT INTO score_grades VALUES (?, ?, ?)",
                    [[g.grade, rank, g.min_score] for rank, g in enumerate(model.grades)])
    if model.grade_limits:
        con.executemany("INSERT INTO score_limits VALUES (?, ?, ?, ?, ?)",
                        [[lim.datasets, lim.statuses, lim.grade, model.grade_rank(lim.grade), lim.reason_zh]
                         for lim in model.grade_limits])


def _score(con: duckdb.DuckDBPyConnection, model: ScoringModel, as_of: date) -> None:
    """Temp tables run_subjects (``sid``: the subject's place in key order), run_parts (the lines of facts,
    measures and caps, narrow: a fact by its ``rowid`` in mart.credit_records) and run_scores."""
    kinds = model.subject_kinds
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_subjects AS
    SELECT subject_key, (row_number() OVER (ORDER BY subject_key))::INTEGER AS sid
    FROM (SELECT DISTINCT subject_key FROM mart.credit_records
          WHERE as_of = $as_of AND fact_kind = 'register'
            AND (CASE WHEN starts_with(subject_key, 'P:') THEN $persons
                      WHEN starts_with(subject_key, 'N:') THEN false ELSE $entities END))""",
                {"as_of": as_of, "persons": "natural_person" in kinds, "entities": "legal_entity" in kinds})
    # Full months from the decision date to the as-of day: the most months that, added to the decision date,
    # do not pass the day (to_months takes a missing day to the month's last, as publication periods count).
    # Kept: the facts a category gives points (counted or not: a not-counted one is a 0 line) and the
    # counted facts of range indicators.
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_facts AS
    WITH f AS (
        SELECT s.sid, f.record_id, f.dataset_id, f.document, f.decided, f.status, f.measure, i.ord, i.by_kind,
            i.window_months,
            CASE i.category_of WHEN 'severity' THEN f.severity WHEN 'kind' THEN f.record_kind
                               WHEN 'polarity' THEN f.polarity END AS category,
            date_diff('month', f.decided, $as_of::DATE) AS months,
            st.status IS NOT NULL AS status_counts
        FROM mart.credit_records f
        JOIN run_subjects s USING (subject_key)
        JOIN score_ind_datasets d ON d.dataset_id = f.dataset_id AND d.fact_kind = f.fact_kind
        JOIN score_indicators i ON i.ord = d.ord
        LEFT JOIN score_statuses st ON st.ord = i.ord AND st.status = f.status
        WHERE f.as_of = $as_of
    ), aged AS (
        SELECT * EXCLUDE (months),
            months - CASE WHEN decided + to_months(months) > $as_of::DATE THEN 1 ELSE 0 END AS age_months
        FROM f
    )
    SELECT a.* EXCLUDE (window_months),
        status_counts AND (window_months IS NULL OR coalesce(age_months < window_months, false)) AS counts,
        c.points AS raw_points
    FROM aged a LEFT JOIN score_categories c ON c.ord = a.ord AND c.category = a.category
    WHERE c.points IS NOT NULL
       OR (a.by_kind = 'range' AND status_counts AND (window_months IS NULL OR age_months < window_months))
    """, {"as_of": as_of})
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_parts AS
    WITH measured AS (
        SELECT f.sid, f.ord, CASE any_value(i.measure_kind) WHEN 'count' THEN count(*)::DOUBLE
            WHEN 'max' THEN max(f.measure) WHEN 'age_years' THEN floor(arg_max(f.age_months, f.decided) / 12) END
            AS value
        FROM run_facts f JOIN score_indicators i USING (ord) WHERE f.by_kind = 'range' GROUP BY f.sid, f.ord
        UNION ALL  -- a count of nothing is 0: a line where a range holds for 0
        SELECT s.sid, i.ord, 0 FROM run_subjects s CROSS JOIN score_indicators i
        WHERE i.measure_kind = 'count' AND EXISTS (
            SELECT 1 FROM score_ranges r WHERE r.ord = i.ord AND r.low <= 0 AND (r.high IS NULL OR r.high > 0))
          AND NOT EXISTS (SELECT 1 FROM run_facts f WHERE f.sid = s.sid AND f.ord = i.ord)
    )
    SELECT f.sid, f.ord, CASE WHEN f.counts THEN 1 ELSE 2 END AS kind, f.record_id, f.dataset_id, f.document,
        f.decided, f.status, f.category,
        f.age_months, NULL::DOUBLE AS measure, f.raw_points,
        CASE WHEN f.counts THEN coalesce(d.factor, 1.0) END AS factor,
        CASE WHEN f.counts THEN round(f.raw_points * coalesce(d.factor, 1.0), 2) ELSE 0 END AS points,
        CASE WHEN NOT f.counts THEN CASE WHEN f.status_counts THEN 'window' ELSE f.status END END AS why
    FROM run_facts f
    LEFT JOIN score_decay d ON d.ord = f.ord AND f.age_months >= d.lo AND (d.hi IS NULL OR f.age_months < d.hi)
    WHERE f.by_kind = 'category'
    UNION ALL
    SELECT m.sid, m.ord, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, m.value, r.points, NULL, coalesce(r.points, 0),
        NULL
    FROM measured m LEFT JOIN score_ranges r ON r.ord = m.ord AND m.value >= r.low
        AND (r.high IS NULL OR m.value < r.high)
    WHERE m.value <> 0 OR r.points IS NOT NULL
    """)
    con.execute("DROP TABLE run_facts")
    con.execute("""
    INSERT INTO run_parts
    SELECT p.sid, p.ord, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, sum(p.points), NULL, NULL,
        round(greatest(-any_value(i.cap), least(any_value(i.cap), sum(p.points))) - sum(p.points), 2), NULL
    FROM run_parts p JOIN score_indicators i USING (ord) WHERE i.cap IS NOT NULL
    GROUP BY p.sid, p.ord HAVING abs(sum(p.points)) > any_value(i.cap)
    """)
    con.execute("""
    CREATE OR REPLACE TEMP TABLE run_scores AS
    WITH totals AS (
        SELECT s.sid, s.subject_key, $base + coalesce(sum(p.points), 0) AS raw_total
        FROM run_subjects s LEFT JOIN run_parts p USING (sid) GROUP BY s.sid, s.subject_key
    ), bounded AS (
        SELECT *, round(greatest($min, least($max, raw_total)), 2) AS score FROM totals
    ), by_points AS (
        SELECT b.*, min(g.rank) AS rank FROM bounded b JOIN score_grades g ON b.score >= g.min_score GROUP BY ALL
    ), limits AS (
        SELECT s.sid, max(l.rank) AS rank, arg_max(l.reason_zh, l.rank) AS reason_zh
        FROM mart.credit_records f JOIN run_subjects s USING (subject_key)
        JOIN score_limits l ON list_contains(l.datasets, f.dataset_id) AND list_contains(l.statuses, f.status)
        WHERE f.as_of = $as_of GROUP BY s.sid
    )
    SELECT b.sid, b.subject_key, b.raw_total, b.score, g.grade, gp.grade AS grade_by_points,
        CASE WHEN l.rank > b.rank THEN l.reason_zh END AS grade_limit_zh
    FROM by_points b LEFT JOIN limits l USING (sid)
    JOIN score_grades g ON g.rank = greatest(b.rank, coalesce(l.rank, b.rank))
    JOIN score_grades gp ON gp.rank = b.rank
    """, {"as_of": as_of, "base": model.base, "min": model.total.min, "max": model.total.max})


_LINE_KINDS = ["measure", "fact", "not_counted", "cap"]  # run_parts.kind 0..3, their order within an indicator


def _insert_lines(con: duckdb.DuckDBPyConnection, model: ScoringModel, run_id: str) -> None:
    """mart.score_lines of the run: base, the parts (facts named from mart.credit_records), total bound."""
    con.execute("""
    INSERT INTO mart.score_lines
    WITH lines AS (
        SELECT sid, 0 AS grp, 0 AS ord, -1 AS kind, NULL AS record_id, NULL AS dataset_id, NULL AS document,
            NULL::DATE AS decided, NULL AS status,
            NULL AS category, NULL::INTEGER AS age_months, NULL::DOUBLE AS measure, NULL::DOUBLE AS raw_points,
            NULL::DOUBLE AS factor, $base::DOUBLE AS points, NULL AS why
        FROM run_scores
        UNION ALL
        SELECT sid, 1, ord, kind, record_id, dataset_id, document, decided, status, category, age_months, measure,
            raw_points, factor, points, why
        FROM run_parts
        UNION ALL
        SELECT sid, 2, 0, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, raw_total, NULL, NULL,
            round(greatest($min, least($max, raw_total)) - raw_total, 2), NULL
        FROM run_scores WHERE raw_total < $min OR raw_total > $max
    )
    SELECT $run_id, s.subject_key,
        (row_number() OVER (PARTITION BY l.sid ORDER BY l.grp, l.ord, l.kind, l.decided DESC NULLS LAST,
                                                        hash(l.record_id)))::INTEGER AS line_no,
        CASE l.kind WHEN -1 THEN 'base' WHEN 4 THEN 'total_bound' ELSE $kinds[l.kind + 1] END,
        i.dimension_id, i.indicator_id, l.record_id, l.dataset_id, l.document, l.decided, l.status, l.category,
        l.age_months, l.measure, l.raw_points, l.factor, l.points, $notes[list_position($whys, l.why)]
    FROM lines l JOIN run_subjects s USING (sid)
    LEFT JOIN score_indicators i ON i.ord = l.ord AND l.grp = 1
    ORDER BY l.sid, line_no
    """, {"run_id": run_id, "base": model.base, "min": model.total.min, "max": model.total.max,
          "kinds": _LINE_KINDS, "whys": list(NOT_COUNTED_ZH), "notes": list(NOT_COUNTED_ZH.values())})
