"""The collection catalog loads, validates, routes, and explains what is broken."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from foundation.catalog import CatalogError, header_key, load_catalog
from foundation.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit

REQUIRED_DATASETS = {
    "legal_entity", "admin_license", "admin_penalty", "tax_payment", "social_insurance", "housing_fund",
    "utility_payment", "admin_enforcement", "admin_confirmation", "admin_adjudication", "admin_reward",
    "admin_inspection",
}


def test_first_release_datasets_present(catalog):
    assert REQUIRED_DATASETS <= set(catalog.datasets)


def test_payment_data_is_not_public(catalog):
    # domain.md: tax, social insurance, housing fund and utility payments are authorized-query only
    for ds in ("tax_payment", "social_insurance", "housing_fund", "utility_payment"):
        assert catalog.dataset(ds).disclosure.value == "authorized"


def test_personal_id_fields_are_authorized_only(catalog):
    for ds in catalog.datasets.values():
        for spec in ds.fields:
            if spec.type.value == "resident_id":
                assert ds.disclosure_of(spec).value == "authorized", (ds.id, spec.code)


def test_penalty_accepts_both_field_generations(catalog):
    penalty = catalog.dataset("admin_penalty")
    aliases = {header_key(a): f.code for f in penalty.fields for a in (f.code, f.name_zh, *f.aliases)}
    assert aliases[header_key("CF_XZJG")] == "CF_CFJG"  # pre-2019 code
    assert aliases[header_key("行政相对人名称")] == "CF_XDR_MC"
    assert aliases[header_key("ＣＦ_ＷＳＨ ")] == "CF_WSH"  # full-width and a stray space


@pytest.mark.parametrize(
    ("department", "file_name", "expected"),
    [
        ("market_regulation", "xzcf_2022.csv", "admin_penalty"),
        ("tax", "nashui_202207.csv", "tax_payment"),
        ("housing_fund", "公积金缴存_2022.xlsx", "housing_fund"),
    ],
)
def test_route(catalog, department, file_name, expected):
    assert [d.id for d in catalog.route(department, file_name)] == [expected]


def _broken_copy(tmp_path: Path, dataset: str, edit) -> Path:
    root = tmp_path / "catalogs"
    shutil.copytree(PROJECT_ROOT / "catalogs", root)
    path = root / "datasets" / f"{dataset}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def test_bad_field_type_names_file_dataset_and_field(tmp_path):
    def edit(doc):
        doc["fields"][1]["type"] = "colour"

    with pytest.raises(CatalogError) as err:
        load_catalog(_broken_copy(tmp_path, "admin_penalty", edit))
    text = str(err.value)
    assert "admin_penalty.yaml" in text and "dataset 'admin_penalty'" in text and "CF_XDR_LB" in text


def test_unknown_key_field_is_refused(tmp_path):
    def edit(doc):
        doc["key_fields"] = ["NO_SUCH_FIELD"]

    with pytest.raises(CatalogError, match="key_fields: 'NO_SUCH_FIELD' is not one of its fields"):
        load_catalog(_broken_copy(tmp_path, "tax_payment", edit))


def test_field_code_that_could_carry_sql_is_refused(tmp_path):
    def edit(doc):
        doc["fields"][0]["code"] = 'X" ; DROP TABLE audit.batches; --'

    with pytest.raises(CatalogError, match="String should match pattern"):
        load_catalog(_broken_copy(tmp_path, "housing_fund", edit))


def test_adding_a_dataset_needs_only_a_file(tmp_path):
    root = tmp_path / "catalogs"
    shutil.copytree(PROJECT_ROOT / "catalogs", root)
    doc = yaml.safe_load((root / "datasets" / "housing_fund.yaml").read_text(encoding="utf-8"))
    doc["id"] = "real_estate"
    doc["name_zh"] = "不动产登记信息"
    doc["inbox_patterns"] = ["*budongchan*"]
    (root / "datasets" / "real_estate.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    catalog = load_catalog(root)
    assert catalog.dataset("real_estate").name_zh == "不动产登记信息"
    assert [d.id for d in catalog.route("housing_fund", "budongchan_2022.csv")] == ["real_estate"]


def test_committed_parquet_contract_matches_the_catalog(catalog):
    from warehouse.contract import render_contract

    committed = (PROJECT_ROOT / "docs" / "parquet-contract.md").read_text(encoding="utf-8")
    assert committed == render_contract(catalog), "run `credit contract` and commit docs/parquet-contract.md"
