"""Publication on the two-year sample city against the generator's ground truth (truth/publication.csv).

The city is the one `make demo` builds (fixture ``two_year_city``: every ingest and close DAG through
Airflow). The release as of PUBLICATION_AS_OF must hold exactly the records the truth says are
published — per record, hence per dataset and severity — under each governing choice; repairs must
be loaded or quarantined as the truth designed them; and no published file may carry a resident ID.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from credit.publication import approve_release, prepare_release
from foundation.catalog import load_catalog
from foundation.settings import get_settings
from sample_city.history_publication import PUBLICATION_AS_OF
from tests.conftest import TWO_YEAR_TIMEOUT, catalog_governed_by, truth_rows
from tests.restricted_scan import resident_ids_in_parquet

pytestmark = [pytest.mark.e2e, pytest.mark.slow, TWO_YEAR_TIMEOUT]


@pytest.fixture(scope="module")
def city(two_year_city, tmp_path_factory):
    """A copy of the two-year city's warehouse and Parquet (releases write to the data root)."""
    root = tmp_path_factory.mktemp("publication-city") / "data"
    root.mkdir()
    for name in ("warehouse.duckdb", "parquet", "truth"):
        source = two_year_city / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
    return root


def _published(catalog, folder: Path) -> Counter:
    """(dataset, document, subject name, severity) of every record in a release folder."""
    con = duckdb.connect()
    found: Counter = Counter()
    for ds in catalog.published():
        pub = ds.publication
        rows = con.execute(f'SELECT "{pub.document_field}", "{ds.subject.name_field}", coalesce(severity, \'\') '
                           "FROM read_parquet(?)", [str(folder / "records" / f"{ds.id}.parquet")]).fetchall()
        found.update((ds.id, doc, name, severity) for doc, name, severity in rows)
    return found


def _expected(root: Path, governing: str) -> Counter:
    return Counter((r["dataset_id"], r["document"], r["subject_name"], r["severity"] if r["severity"] != "-" else "")
                   for r in truth_rows(root, "publication.csv") if r[f"published_{governing}"] == "true")


def test_release_holds_exactly_the_truths_public_records(city, monkeypatch, catalog):
    monkeypatch.setenv("CREDIT_DATA_DIR", str(city))
    settings = get_settings()
    release = prepare_release(settings, catalog, PUBLICATION_AS_OF, prepared_by="test")
    published = approve_release(settings, catalog, release.release_id, approver="审核员")
    got, want = _published(catalog, published.folder), _expected(city, "decision")
    assert sum(want.values()) > 1000
    assert got - want == Counter() and want - got == Counter()
    by_class = Counter((ds, sev) for (ds, _doc, _name, sev), n in got.items() for _ in range(n))
    manifest = json.loads((published.folder / "manifest.json").read_text(encoding="utf-8"))
    counted = Counter()
    for ds, departments in manifest["counts"].items():
        for classes in departments.values():
            for sev, n in classes.items():
                counted[(ds, "" if sev == "-" else sev)] += n
    assert counted == by_class
    # Both rule versions are in the truth and in the release; minor, expired and repaired records are absent.
    reasons = Counter(r["reason_decision"] for r in truth_rows(city, "publication.csv"))
    assert {"minor_not_published", "expired", "repaired", "objection", "revoked", "unclassified"} <= set(reasons)
    versions = {r["version_decision"] for r in truth_rows(city, "publication.csv") if r["published_decision"] == "true"}
    assert {"ndrc_order_58", "ndrc_order_36"} <= versions
    assert resident_ids_in_parquet(published.folder) == []


def test_repairs_are_loaded_or_quarantined_as_designed(city):
    con = duckdb.connect(str(city / "warehouse.duckdb"), read_only=True)
    quarantined = {(f, row): reasons[0].split(":")[0] for f, row, reasons in con.execute(
        "SELECT b.department || '/' || b.source_file, q.source_row, q.reasons "
        "FROM quarantine.rows q JOIN audit.batches b USING (batch_id) "
        "WHERE b.dataset_id = 'credit_repair'").fetchall()}
    files = {f for f, _ in quarantined}
    expected = {}
    for r in truth_rows(city, "repairs.csv"):
        if r["expected_outcome"] == "quarantine":
            expected[(r["file"], int(r["row"]))] = r["expected_reason"]
    assert expected, "the truth designs quarantined repairs"
    assert quarantined == expected, files


def test_the_governing_choice_changes_the_release_as_the_truth_says(city, tmp_path, monkeypatch):
    monkeypatch.setenv("CREDIT_DATA_DIR", str(city))
    catalog = load_catalog(catalog_governed_by(tmp_path, "publication_date", monkeypatch))
    release = prepare_release(get_settings(), catalog, PUBLICATION_AS_OF, prepared_by="test")
    got = _published(catalog, release.candidate)
    # Repairs were judged when they loaded, under the catalog's default choice: records whose repair the two
    # choices judge differently are left out of this comparison.
    differ = {(r["target_dataset"], r["document"]) for r in truth_rows(city, "repairs.csv")
              if (r["expected_outcome"], r["expected_reason"]) != (r["expected_outcome_publication"],
                                                                   r["expected_reason_publication"])}
    want = _expected(city, "publication")
    got = Counter({k: n for k, n in got.items() if (k[0], k[1]) not in differ})
    want = Counter({k: n for k, n in want.items() if (k[0], k[1]) not in differ})
    assert got == want
    assert sum(want.values()) < sum(_expected(city, "decision").values())
