"""The collection catalog (信用数据归集清单): datasets, their fields and rules, as data.

Reads ``catalogs/departments.yaml``, ``catalogs/publication.yaml`` and
every ``catalogs/datasets/*.yaml``; validates them against the models below and
cross-references them. A broken catalog raises :class:`CatalogError` naming the
file, the dataset and the field. Adding a dataset needs a YAML file only.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from foundation.publication_rules import PublicationRules

CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,62}$"  # field codes become SQL column names
ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"  # dataset / department ids become table and folder names


class CatalogError(ValueError):
    """The catalog is malformed; the message names file, dataset and field."""


class Disclosure(StrEnum):
    PUBLIC = "public"  # 公开
    CONDITIONAL = "conditional"  # 有条件公开
    AUTHORIZED = "authorized"  # 授权查询 / 政务共享


class FieldType(StrEnum):
    TEXT = "text"
    ENUM = "enum"
    USCC = "uscc"  # 统一社会信用代码, GB 32100-2015
    ORG_CODE = "org_code"  # 组织机构代码, GB 11714
    RESIDENT_ID = "resident_id"  # 公民身份号码, GB 11643
    DATE = "date"
    AMOUNT = "amount"  # decimal; unit in the field's ``unit``
    INTEGER = "integer"


CODE_TYPES = {FieldType.USCC, FieldType.ORG_CODE, FieldType.RESIDENT_ID}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    name_zh: str
    type: FieldType = FieldType.TEXT
    required: bool = False
    allowed_values: list[str] | None = None
    multi: bool = False  # several allowed values in one cell, separated by ; ； 、 or ,
    aliases: list[str] = []
    disclosure: Disclosure | None = None  # defaults to the dataset's level
    max_length: Annotated[int, Field(gt=0)] = 4000
    unit: str | None = None  # e.g. 万元
    min_value: float | None = None
    max_value: float | None = None
    # A text field is scanned for resident ID numbers typed into it, masked in the clean export.
    # False for codes of their own kind that can look like one (a licence number: division + date + serial).
    mask_ids: bool = True
    description: str | None = None

    @model_validator(mode="after")
    def _enum_has_values(self) -> FieldSpec:
        if self.type is FieldType.ENUM and not self.allowed_values:
            raise ValueError("an enum field needs allowed_values")
        return self


class Timeliness(_Model):
    working_days: Annotated[int, Field(gt=0)]
    date_field: str  # the decision date the deadline counts from


class DeliveryRule(_Model):
    """How often a department delivers a dataset and by when (归集频次与报送期限)."""

    cadence: Literal["monthly", "weekly"] = "monthly"
    deadline_working_days: Annotated[int, Field(ge=0, le=60)] = 5  # after the period ends, Chinese calendar


class Delivery(DeliveryRule):
    """The dataset's delivery expectation: every ``expected_from`` department sends one file per
    period from ``since`` (the first period after the dataset entered the catalog), by the deadline.
    ``overrides`` gives a department its own cadence or deadline (the busiest send weekly)."""

    since: Annotated[str, Field(pattern=r"^\d{4}-(\d{2}|W\d{2})$")]
    expected_from: list[str] | None = None  # default: the dataset's departments
    overrides: dict[str, DeliveryRule] = {}

    def rule_for(self, department: str) -> DeliveryRule:
        return self.overrides.get(department, self)


class SubjectFields(_Model):
    """Which fields identify the subject (行政相对人) of a record."""

    name_field: str
    uscc_field: str | None = None
    type_field: str | None = None
    id_field: str | None = None  # a natural person's ID number


class DateOrder(_Model):
    """``start`` must not be after ``end`` when both are present (e.g. 有效期自 <= 有效期至)."""

    start: str
    end: str


class Publication(_Model):
    """How a dataset's records are published on the credit website (公示), by ``basis``:

    - ``severity``: the record's class (``severity_rules`` in publication.yaml) and the rule version
      governing it give the period from ``date_field``; ``end_field`` is the feed's own 公示截止期:
      the earlier end wins and a disagreement beyond the rules is reported;
    - ``validity``: published while valid, until ``end_field`` (e.g. 有效期至; empty: open-ended);
    - ``fixed``: published for ``max_months`` from ``date_field``;
    - ``list``: list events (``event_field`` value -> entry / exit / repair); an entry is published
      until its exit or repair, ``end_field``, or the maximum of ``list_severity`` under the rules.
    ``document_field`` (决定书文号) is how a repair or a list event names the record.
    """

    basis: Literal["severity", "validity", "fixed", "list"]
    date_field: str
    document_field: str
    end_field: str | None = None
    severity_rules: str | None = None
    max_months: Annotated[int, Field(gt=0, le=120)] | None = None
    list_severity: str | None = None
    event_field: str | None = None
    events: dict[str, Literal["entry", "exit", "repair"]] = {}

    @model_validator(mode="after")
    def _complete(self) -> Publication:
        needs = {"severity": ["severity_rules"], "validity": ["end_field"], "fixed": ["max_months"],
                 "list": ["list_severity", "event_field", "events"]}[self.basis]
        for name in needs:
            if not getattr(self, name):
                raise ValueError(f"basis '{self.basis}' needs '{name}'")
        return self

    def fields(self) -> list[str]:
        return [c for c in (self.date_field, self.document_field, self.end_field, self.event_field) if c]


class Repairs(_Model):
    """A repair dataset (信用修复 / 异议 / 撤销): each row names a published record by dataset (its
    ``name_zh`` in ``dataset_field``), 决定书文号 and subject, and withdraws it from ``date_field`` on.
    A repair before the record's minimum period, of a record that cannot be repaired early, or of
    a record the warehouse does not hold, is quarantined with its reason."""

    dataset_field: str
    document_field: str
    kind_field: str
    date_field: str
    kinds: dict[str, Literal["repair", "objection", "revoked"]]

    def fields(self) -> list[str]:
        return [self.dataset_field, self.document_field, self.kind_field, self.date_field]


Polarity = Literal["negative", "positive", "neutral"]


class CreditFacts(_Model):
    """How a dataset's rows enter the credit-records mart (``mart.credit_records``, warehouse/credit_records.py).

    - ``record``: one fact per record (its latest copy): ``polarity``, overridden per record kind by
      ``polarity_by_kind`` (e.g. an inspection is neutral unless 不合格); ``kind_field`` gives the
      record kind, ``date_field`` the decision date (default: the publication block's). Datasets
      with a publication block carry its status (published, repaired, expired, ...) and severity;
    - ``register``: one fact per registered subject: ``kind_field`` its status (登记状态),
      ``date_field`` its founding date (成立日期);
    - ``payment``: one ``arrears`` fact per subject and month in arrears (a row of the month with
      ``arrears_field`` in ``arrears_values``) and one ``on_time_streak`` fact per subject: the months
      reported since its last month in arrears. ``month_field`` is a date or ``YYYY-MM`` text.
    """

    fact: Literal["record", "register", "payment"] = "record"
    polarity: Polarity = "neutral"
    polarity_by_kind: dict[str, Polarity] = {}
    kind_field: str | None = None
    date_field: str | None = None
    month_field: str | None = None
    arrears_field: str | None = None
    arrears_values: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> CreditFacts:
        needs = {"record": [], "register": ["kind_field", "date_field"],
                 "payment": ["month_field", "arrears_field", "arrears_values"]}[self.fact]
        for name in needs:
            if not getattr(self, name):
                raise ValueError(f"fact '{self.fact}' needs '{name}'")
        return self

    def fields(self) -> list[str]:
        return [c for c in (self.kind_field, self.date_field, self.month_field, self.arrears_field) if c]


class Dataset(_Model):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    name_zh: str
    category: Literal["register", "double_publicity", "payment", "admin_management", "other"]
    departments: list[str]
    disclosure: Disclosure
    subject_types: list[Literal["legal_entity", "natural_person", "individual_business"]]
    timeliness: Timeliness | None = None
    delivery: Delivery | None = None  # periodic feeds: cadence, deadline, first period (missing-feed detection)
    publication: Publication | None = None  # published on the credit website, and how (公示)
    repairs: Repairs | None = None  # this dataset withdraws records of others (信用修复)
    credit: CreditFacts | None = None  # what it contributes to the credit-records mart (scoring)
    code_error_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0001
    inbox_patterns: Annotated[list[str], Field(min_length=1)]
    key_fields: Annotated[list[str], Field(min_length=1)]
    subject: SubjectFields
    date_order: list[DateOrder] = []
    fields: Annotated[list[FieldSpec], Field(min_length=1)]
    description: str | None = None

    def field(self, code: str) -> FieldSpec:
        for spec in self.fields:
            if spec.code == code:
                return spec
        raise KeyError(code)

    @property
    def field_codes(self) -> list[str]:
        return [f.code for f in self.fields]

    def disclosure_of(self, spec: FieldSpec) -> Disclosure:
        return spec.disclosure or self.disclosure

    def expected_departments(self) -> list[str]:
        """Departments that owe a file every period (none without a delivery rule)."""
        if self.delivery is None:
            return []
        return list(self.delivery.expected_from or self.departments)

    def matches_file(self, file_name: str) -> bool:
        name = file_name.lower()
        return any(fnmatch.fnmatch(name, p.lower()) for p in self.inbox_patterns)


class Department(_Model):
    code: Annotated[str, Field(pattern=ID_PATTERN)]
    name_zh: str
    uscc: str | None = None
    email: str | None = None  # where the department's quality digest goes (数据质量通报)


def header_key(text: str) -> str:
    """How a header is compared with catalog codes and aliases: NFKC, no spaces, casefolded, and
    no invisible characters (zero-width space / non-joiner / joiner, word joiner, BOM, soft hyphen)."""
    text = unicodedata.normalize("NFKC", text).translate(
        {0x200B: None, 0x200C: None, 0x200D: None, 0x2060: None, 0xFEFF: None, 0x00AD: None}
    )
    return "".join(text.split()).casefold()


class Catalog:
    def __init__(
        self,
        datasets: dict[str, Dataset],
        departments: dict[str, Department],
        publication: PublicationRules,
    ) -> None:
        self.datasets = datasets
        self.departments = departments
        self.publication = publication

    def published(self) -> list[Dataset]:
        """Datasets the credit website shows: public, with publication rules."""
        return [d for d in self.datasets.values() if d.publication and d.disclosure is Disclosure.PUBLIC]

    def load_rank(self, dataset_id: str | None) -> int:
        """Load order within a run: the register first (0: later datasets are checked against it), a repair
        dataset last (2: it names records of the others), everything else between (1)."""
        ds = self.datasets.get(dataset_id) if dataset_id else None
        if ds is None:
            return 1
        return 0 if ds.category == "register" else 2 if ds.repairs is not None else 1

    def by_name(self, name_zh: str) -> Dataset | None:
        return next((d for d in self.datasets.values() if d.name_zh == name_zh), None)

    def dataset(self, dataset_id: str) -> Dataset:
        try:
            return self.datasets[dataset_id]
        except KeyError:
            known = ", ".join(sorted(self.datasets))
            raise CatalogError(f"unknown dataset '{dataset_id}'; the catalog has: {known}") from None

    def department(self, code: str) -> Department:
        try:
            return self.departments[code]
        except KeyError:
            known = ", ".join(sorted(self.departments))
            raise CatalogError(f"unknown department '{code}'; the catalog has: {known}") from None

    def route(self, department: str, file_name: str) -> list[Dataset]:
        """Datasets whose inbox patterns match a file a department dropped."""
        return [
            ds
            for ds in self.datasets.values()
            if department in ds.departments and ds.matches_file(file_name)
        ]


def catalog_dir_or_default(catalog_dir: Path | None = None) -> Path:
    """The catalog directory: the one given, else the settings' (``CREDIT_CATALOG_DIR`` or ``catalogs/``)."""
    from foundation.settings import get_settings

    return catalog_dir or get_settings().catalog_dir


def read_catalog_file(relpath: str, catalog_dir: Path | None = None) -> object:
    """One YAML file of the catalog directory, parsed; every catalog file is read through here."""
    return _read_yaml(catalog_dir_or_default(catalog_dir) / relpath)


def _read_yaml(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc


def _explain(path: Path, owner: str, exc: ValidationError, raw: object) -> CatalogError:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        # Name the field by its code when the error sits inside fields[i].
        if len(loc) >= 2 and loc[0] == "fields" and isinstance(loc[1], int) and isinstance(raw, dict):
            try:
                code = raw["fields"][loc[1]].get("code", "?")
                where = f"field '{code}' ({where})"
            except (KeyError, IndexError, AttributeError, TypeError):
                pass
        lines.append(f"{path}: {owner}, {where}: {err['msg']}")
    return CatalogError("\n".join(lines))


def _check_dataset(path: Path, ds: Dataset, departments: dict, rules: PublicationRules) -> None:
    def fail(what: str) -> NoReturn:
        raise CatalogError(f"{path}: dataset '{ds.id}', {what}")

    if path.stem != ds.id:
        fail(f"id must equal the file name '{path.stem}'")
    codes = ds.field_codes
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            fail(f"field '{code}': duplicate field code")
        seen.add(code)
    owners: dict[str, str] = {}
    for spec in ds.fields:
        for alias in [spec.code, spec.name_zh, *spec.aliases]:
            key = header_key(alias)
            if owners.get(key, spec.code) != spec.code:
                fail(f"field '{spec.code}': alias '{alias}' also belongs to '{owners[key]}'")
            owners[key] = spec.code
    refs = {"key_fields": ds.key_fields}
    refs["subject"] = [v for v in ds.subject.model_dump().values() if v]
    refs["date_order"] = [c for rule in ds.date_order for c in (rule.start, rule.end)]
    if ds.timeliness:
        refs["timeliness.date_field"] = [ds.timeliness.date_field]
    if ds.publication:
        refs["publication"] = ds.publication.fields()
        if ds.publication.severity_rules:
            rule_set = rules.severity_rules.get(ds.publication.severity_rules)
            if rule_set is None:
                fail(f"publication.severity_rules: '{ds.publication.severity_rules}' is not in publication.yaml")
            refs["publication.severity_rules"] = rule_set.fields()
        if ds.publication.list_severity and ds.publication.list_severity not in rules.severities:
            fail(f"publication.list_severity: '{ds.publication.list_severity}' is not a class of publication.yaml")
    if ds.repairs:
        refs["repairs"] = ds.repairs.fields()
    if ds.credit:
        refs["credit"] = ds.credit.fields()
        if ds.credit.fact == "record" and not (ds.credit.date_field or ds.publication):
            fail("credit: a record dataset without a publication block needs 'date_field'")
    for where, fields in refs.items():
        for code in fields:
            if code not in seen:
                fail(f"{where}: '{code}' is not one of its fields")
    for dept in ds.departments:
        if dept not in departments:
            fail(f"departments: '{dept}' is not in departments.yaml")
    if ds.delivery:
        for dept in [*(ds.delivery.expected_from or []), *ds.delivery.overrides]:
            if dept not in ds.departments:
                fail(f"delivery: '{dept}' is not one of the dataset's departments")
    if ds.publication:
        for field_code in (ds.publication.date_field, ds.publication.end_field):
            if field_code and ds.field(field_code).type is not FieldType.DATE:
                fail(f"publication: '{field_code}' must be a date field")


def load_catalog(catalog_dir: Path) -> Catalog:
    """Load and validate the whole catalog; raises CatalogError on the first broken file."""
    departments: dict[str, Department] = {}
    dept_path = catalog_dir / "departments.yaml"
    raw_depts = read_catalog_file("departments.yaml", catalog_dir) or []
    if not isinstance(raw_depts, list):
        raise CatalogError(f"{dept_path}: expected a list of departments")
    for i, item in enumerate(raw_depts):
        try:
            dept = Department.model_validate(item)
        except ValidationError as exc:
            raise _explain(dept_path, f"department #{i + 1}", exc, item) from None
        departments[dept.code] = dept

    rules_path = catalog_dir / "publication.yaml"
    try:
        rules = PublicationRules.model_validate(read_catalog_file("publication.yaml", catalog_dir) or {})
    except ValidationError as exc:
        raise _explain(rules_path, "publication rules", exc, None) from None

    datasets: dict[str, Dataset] = {}
    for path in sorted((catalog_dir / "datasets").glob("*.yaml")):
        raw = _read_yaml(path)
        owner = f"dataset '{raw.get('id', path.stem)}'" if isinstance(raw, dict) else "dataset"
        try:
            ds = Dataset.model_validate(raw)
        except ValidationError as exc:
            raise _explain(path, owner, exc, raw) from None
        _check_dataset(path, ds, departments, rules)
        datasets[ds.id] = ds
    if not datasets:
        raise CatalogError(f"{catalog_dir / 'datasets'}: no dataset files found")
    catalog = Catalog(datasets, departments, rules)
    for ds in datasets.values():
        if ds.repairs:
            _check_repairs(catalog_dir / "datasets" / f"{ds.id}.yaml", ds, catalog)
    return catalog


def _check_repairs(path: Path, ds: Dataset, catalog: Catalog) -> None:
    """A repair dataset's ``dataset_field`` lists the names of published datasets, its kinds field
    the kinds it maps."""
    assert ds.repairs is not None
    named = ds.field(ds.repairs.dataset_field).allowed_values or []
    for name in named:
        target = catalog.by_name(name)
        if target is None or target.publication is None:
            raise CatalogError(f"{path}: dataset '{ds.id}', repairs.dataset_field: '{name}' is not the name_zh "
                               "of a dataset with publication rules")
    kinds = set(ds.field(ds.repairs.kind_field).allowed_values or [])
    if kinds != set(ds.repairs.kinds):
        raise CatalogError(f"{path}: dataset '{ds.id}', repairs.kinds must map exactly the allowed values of "
                           f"'{ds.repairs.kind_field}': {sorted(kinds)}")


@lru_cache(maxsize=4)
def _cached(catalog_dir: str) -> Catalog:
    return load_catalog(Path(catalog_dir))


def get_catalog(catalog_dir: Path | None = None) -> Catalog:
    return _cached(str(catalog_dir_or_default(catalog_dir)))
