"""Scoring on the two-year sample city against the generator's ground truth (truth/scores.csv, warnings.csv).

The city is the one `make demo` builds (fixture ``two_year_city``). ``credit score run`` as of
PUBLICATION_AS_OF, a whole command, must give every registered subject exactly the score and grade the
truth computed from the designed facts (hence the same grade distribution), and the warning list
exactly the truth's subjects with two or more unrepaired negative records. The exports follow the
Parquet contract; a past day re-scored gives the same scores; a malformed model writes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from sample_city.history_publication import PUBLICATION_AS_OF
from tests.conftest import CREDIT, TWO_YEAR_TIMEOUT, credit_cli, truth_rows
from tests.restricted_scan import resident_ids_in_parquet
from warehouse.contract import CREDIT_MART_FILES

pytestmark = [pytest.mark.e2e, pytest.mark.slow, TWO_YEAR_TIMEOUT]
DAY = PUBLICATION_AS_OF.isoformat()


@pytest.fixture(scope="module")
def city(two_year_city, tmp_path_factory) -> Path:
    """A copy of the two-year city's warehouse, Parquet and truth, scored as of the truth's day."""
    root = tmp_path_factory.mktemp("scoring-city") / "data"
    root.mkdir()
    for name in ("warehouse.duckdb", "parquet", "truth"):
        source = two_year_city / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
    done = credit_cli(["score", "run", "--as-of", DAY], root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _run(con: duckdb.DuckDBPyConnection, day: str, model: str) -> list[str]:
    return [r for (r,) in con.execute("SELECT run_id FROM mart.score_runs WHERE as_of = ? AND model_id = ? "
                                      "ORDER BY run_id", [day, model]).fetchall()]


def test_every_subject_has_the_truths_score_and_grade(city):
    truth = {r["uscc"]: (float(r["score"]), r["grade"]) for r in truth_rows(city, "scores.csv")}
    with duckdb.connect(str(city / "warehouse.duckdb"), read_only=True) as con:
        run_id = _run(con, DAY, "city_2026")[-1]  # the fixture's (the DAGs may have scored the day before)
        got = {k: (s, g) for k, s, g in con.execute(
            "SELECT subject_key, score, grade FROM mart.scores WHERE run_id = ?", [run_id]).fetchall()}
        sums = con.execute("""SELECT count(*) FROM mart.scores s JOIN (
                SELECT subject_key, round(sum(points), 2) AS total FROM mart.score_lines WHERE run_id = $run
                GROUP BY subject_key) l USING (subject_key)
            WHERE s.run_id = $run AND abs(l.total - s.score) > 0.001""", {"run": run_id}).fetchall()[0][0]
    assert len(truth) > 3000
    assert set(got) == set(truth)
    assert {k: v for k, v in got.items() if v != truth[k]} == {}
    assert Counter(g for _, g in got.values()) == Counter(g for _, g in truth.values())
    assert sums == 0  # every subject's explanation lines add up to its score


def test_warning_list_is_the_truths(city):
    truth = {r["uscc"]: (int(r["records"]), r["documents"]) for r in truth_rows(city, "warnings.csv")}
    with duckdb.connect(str(city / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT subject_key, any_value(records), string_agg(document, ';' ORDER BY document) "
                           "FROM mart.credit_warnings WHERE as_of = ? GROUP BY subject_key", [DAY]).fetchall()
    assert len(truth) > 50
    assert {k: (n, docs) for k, n, docs in rows} == truth


def test_exports_follow_the_parquet_contract(city):
    mart = city / "mart"
    with duckdb.connect(str(city / "warehouse.duckdb"), read_only=True) as con:
        run_id = _run(con, DAY, "city_2026")[-1]  # the fixture's (the DAGs may have scored the day before)
        counts = {"credit_records.parquet": con.execute(
                      "SELECT count(*) FROM mart.credit_records WHERE as_of = ?", [DAY]).fetchall()[0][0],
                  "scores.parquet": con.execute("SELECT count(*) FROM mart.scores WHERE run_id = ?",
                                                [run_id]).fetchall()[0][0],
                  "score_lines.parquet": con.execute("SELECT count(*) FROM mart.score_lines WHERE run_id = ?",
                                                     [run_id]).fetchall()[0][0],
                  "credit_warnings.parquet": con.execute("SELECT count(*) FROM mart.credit_warnings WHERE as_of = ?",
                                                         [DAY]).fetchall()[0][0]}
    files = {"credit_records.parquet": mart / "credit_records" / f"as_of={DAY}" / "credit_records.parquet",
             "scores.parquet": mart / "scores" / f"run_id={run_id}" / "scores.parquet",
             "score_lines.parquet": mart / "scores" / f"run_id={run_id}" / "score_lines.parquet",
             "credit_warnings.parquet": mart / "credit_warnings" / f"as_of={DAY}" / "credit_warnings.parquet"}
    for name, path in files.items():
        schema = pq.read_schema(path)
        assert schema.names == [c for c, _, _ in CREDIT_MART_FILES[name]], name
        assert pq.read_metadata(path).num_rows == counts[name] > 0, name
    facts = pq.read_table(files["credit_records.parquet"]).to_pandas()
    assert set(facts["fact_kind"]) == {"record", "register", "arrears", "on_time_streak"}
    assert resident_ids_in_parquet(mart) == []  # facts, scores, lines, warnings: no resident ID anywhere


def test_a_past_day_rescored_gives_the_same_scores_with_its_own_model(city):
    for _ in range(2):
        done = credit_cli(["score", "run", "--as-of", "2026-03-31"], city)
        assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(city / "warehouse.duckdb"), read_only=True) as con:
        first, second = _run(con, "2026-03-31", "city_2025")[-2:]
        a, b = (con.execute("SELECT subject_key, score, grade FROM mart.scores WHERE run_id = ? ORDER BY 1",
                            [r]).fetchall() for r in (first, second))
        lines = [con.execute("SELECT * EXCLUDE (run_id) FROM mart.score_lines WHERE run_id = ? "
                             "ORDER BY subject_key, line_no", [r]).fetchall() for r in (first, second)]
    assert len(a) > 3000 and a == b and lines[0] == lines[1]


def test_a_malformed_model_fails_naming_file_and_indicator_and_writes_nothing(city, tmp_path):
    catalogs = tmp_path / "catalogs"
    shutil.copytree(Path(__file__).resolve().parent.parent / "catalogs", catalogs)
    model = catalogs / "scoring" / "city_2026.yaml"
    model.write_text(model.read_text(encoding="utf-8").replace(
        "categories: {minor: 0, general: -4,", "categories: {grave: -9, minor: 0, general: -4,"), encoding="utf-8")
    counts = ("SELECT (SELECT count(*) FROM mart.score_runs), (SELECT count(*) FROM mart.credit_records), "
              "(SELECT count(*) FROM mart.credit_warnings)")
    with duckdb.connect(str(city / "warehouse.duckdb"), read_only=True) as con:
        before = con.execute(counts).fetchall()[0]
    env = {**os.environ, "CREDIT_DATA_DIR": str(city), "CREDIT_CATALOG_DIR": str(catalogs), "COLUMNS": "300"}
    done = subprocess.run([*CREDIT, "score", "run", "--as-of", "2026-10-31"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 2
    assert "city_2026.yaml" in done.stdout and "indicator 'penalties'" in done.stdout and "grave" in done.stdout
    with duckdb.connect(str(city / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(counts).fetchall()[0] == before
