"""Scoring models, credit warnings and sanction/reward measures as data (catalogs/scoring/, catalogs/*.yaml).

- ``catalogs/scoring/<id>.yaml``: a points model (``ScoringModel``): base points, an indicator tree
  (dimensions -> indicators scored by category or by range, with decay and caps), total bounds,
  grades and grade limits. Several versions coexist; each is in force for its dates.
- ``catalogs/credit_warnings.yaml``: who goes on the warning list and the repair steps (``WarningRules``).
- ``catalogs/credit_measures.yaml``: 失信惩戒 / 守信激励 measures per office (``Measures``).

Everything is validated when loaded, against the dataset catalog too (datasets, severity classes,
departments): a malformed file raises ``CatalogError`` naming the file and the indicator or measure,
before anything is scored or written.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from foundation.catalog import Catalog, CatalogError, catalog_dir_or_default, read_catalog_file

ID = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
FactKind = Literal["record", "register", "arrears", "on_time_streak"]
# Facts without a publication status (register, payments, repairs) carry this one.
IN_EFFECT = "in_effect"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Range(_Model):
    low: Annotated[float, Field(alias="from")]
    high: Annotated[float | None, Field(alias="to")] = None  # exclusive; None: no upper bound
    points: float

    def holds(self, value: float) -> bool:
        return self.low <= value and (self.high is None or value < self.high)


class DecayStep(_Model):
    under_months: Annotated[int, Field(gt=0)] | None = None  # None: every older fact
    factor: Annotated[float, Field(ge=0, le=1)]


class Indicator(_Model):
    """One leaf of the tree. ``by: category``: each counted fact scores ``categories[<category_of>]`` times its decay
    factor; ``by: range``: ``measure`` over the counted facts picks the first range that holds."""

    id: ID
    name_zh: str
    datasets: Annotated[list[str], Field(min_length=1)]
    fact_kind: FactKind | None = None  # default: the datasets' own (record or register)
    statuses: list[str] = ["published", IN_EFFECT]
    by: Literal["category", "range"]
    category_of: Literal["severity", "kind", "polarity"] | None = None
    categories: dict[str, float] = {}
    measure: Literal["count", "max", "age_years"] | None = None
    ranges: list[Range] = []
    window_months: Annotated[int, Field(gt=0)] | None = None  # only facts aged under this count
    decay: list[DecayStep] = []
    cap: Annotated[float, Field(gt=0)] | None = None  # at most this many points either way

    @model_validator(mode="after")
    def _complete(self) -> Indicator:
        if self.by == "category":
            if not self.category_of or not self.categories:
                raise ValueError("a category indicator needs 'category_of' and 'categories'")
            if self.ranges or self.measure:
                raise ValueError("a category indicator takes no 'ranges' or 'measure'")
        else:
            if not self.measure or not self.ranges:
                raise ValueError("a range indicator needs 'measure' and 'ranges'")
            if self.categories or self.decay:
                raise ValueError("a range indicator takes no 'categories' or 'decay'")
            for a, b in zip(self.ranges, self.ranges[1:], strict=False):
                if a.high is None or a.high > b.low:
                    raise ValueError(f"ranges overlap or are not in order: {a.low}..{a.high} then {b.low}")
        for r in self.ranges:
            if r.high is not None and r.high <= r.low:
                raise ValueError(f"range from {r.low} to {r.high} is empty")
        if self.decay:
            if self.decay[-1].under_months is not None:
                raise ValueError("the last decay step must have no 'under_months' (it covers every older fact)")
            bounds = [s.under_months for s in self.decay[:-1]]
            if any(s is None for s in bounds) or bounds != sorted(set(bounds)):  # type: ignore[type-var]
                raise ValueError("decay steps must have increasing 'under_months'")
        return self

    def decay_factor(self, age_months: int) -> float:
        for step in self.decay:
            if step.under_months is None or age_months < step.under_months:
                return step.factor
        return 1.0


class Dimension(_Model):
    id: ID
    name_zh: str
    indicators: Annotated[list[Indicator], Field(min_length=1)]


class Grade(_Model):
    grade: Annotated[str, Field(pattern=r"^[A-Z][A-Z+-]{0,3}$")]
    name_zh: str
    min_score: float
    supervision_zh: str = ""


class GradeLimit(_Model):
    """A subject with a fact of ``datasets`` whose status is in ``statuses`` gets at best ``grade``."""

    datasets: Annotated[list[str], Field(min_length=1)]
    statuses: list[str] = ["published"]
    grade: str
    reason_zh: str


class Bounds(_Model):
    min: float
    max: float


class ScoringModel(_Model):
    id: ID
    name_zh: str
    effective_from: date
    effective_to: date | None = None  # inclusive; None: still in force
    subject_kinds: list[Literal["legal_entity", "natural_person"]] = ["legal_entity"]
    base: float
    total: Bounds
    grades: Annotated[list[Grade], Field(min_length=1)]
    grade_limits: list[GradeLimit] = []
    dimensions: Annotated[list[Dimension], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> ScoringModel:
        if self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        if self.total.min > self.total.max:
            raise ValueError("total.min is greater than total.max")
        scores = [g.min_score for g in self.grades]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != len(scores):
            raise ValueError("grades must go from the best (highest min_score) down, without ties")
        if self.grades[-1].min_score > self.total.min:
            raise ValueError(f"the last grade's min_score must be at most total.min ({self.total.min}): "
                             "every score needs a grade")
        names = [g.grade for g in self.grades]
        for limit in self.grade_limits:
            if limit.grade not in names:
                raise ValueError(f"grade_limits: '{limit.grade}' is not one of the grades {names}")
        seen: set[str] = set()
        for ind in self.indicators():
            if ind.id in seen:
                raise ValueError(f"indicator '{ind.id}' appears twice")
            seen.add(ind.id)
        return self

    def indicators(self) -> list[Indicator]:
        return [ind for dim in self.dimensions for ind in dim.indicators]

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def grade_of(self, score: float) -> Grade:
        return next(g for g in self.grades if score >= g.min_score)

    def grade_rank(self, grade: str) -> int:
        """0 for the best grade; larger is worse."""
        return [g.grade for g in self.grades].index(grade)


class ScoringModels:
    """Every model of ``catalogs/scoring/``, by id; at most one is in force on a day."""

    def __init__(self, models: dict[str, ScoringModel], sources: dict[str, Path]) -> None:
        self.models = models
        self.sources = sources

    def get(self, model_id: str) -> ScoringModel:
        try:
            return self.models[model_id]
        except KeyError:
            raise CatalogError(f"unknown scoring model '{model_id}'; catalogs/scoring/ has: "
                               f"{', '.join(sorted(self.models))}") from None

    def in_force(self, day: date) -> ScoringModel:
        for model in self.models.values():
            if model.in_force(day):
                return model
        raise CatalogError(f"no scoring model is in force on {day}; catalogs/scoring/ has: " + ", ".join(
            f"{m.id} ({m.effective_from}..{m.effective_to or ''})" for m in self.models.values()))


class WarningRules(_Model):
    threshold: Annotated[int, Field(ge=1)]
    subject_kinds: list[Literal["legal_entity", "natural_person"]] = ["legal_entity"]
    datasets: Annotated[list[str], Field(min_length=1)]
    statuses: list[str] = ["published"]
    annual_target: Annotated[int, Field(ge=0)]
    steps: dict[str, list[str]]
    not_repairable_zh: str


class MeasureWhen(_Model):
    datasets: list[str] = []
    statuses: list[str] = ["published"]
    severities: list[str] = []
    grades: list[str] = []

    @model_validator(mode="after")
    def _something(self) -> MeasureWhen:
        if not self.datasets and not self.grades:
            raise ValueError("'when' needs 'datasets' or 'grades'")
        return self


class Measure(_Model):
    id: ID
    kind: Literal["sanction", "reward"]
    name_zh: str
    basis_zh: Annotated[str, Field(min_length=1)]
    when: MeasureWhen
    offices: Annotated[list[str], Field(min_length=1)]  # department codes, or [all]
    matters: list[str] = []

    def applies_to_office(self, office: str | None) -> bool:
        return office is None or "all" in self.offices or office in self.offices


class Measures(_Model):
    measures: list[Measure]


def _where(exc: ValidationError, raw: object, path: Path, list_key: str) -> CatalogError:
    """Name the indicator (or measure) an error sits in, by its id."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        owner = ""
        try:
            if loc[:1] == ["dimensions"] and len(loc) >= 4 and loc[2] == "indicators" and isinstance(raw, dict):
                ind = raw["dimensions"][loc[1]]["indicators"][loc[3]]
                owner = f"indicator '{ind.get('id', '?')}', "
                loc = loc[4:]
            elif loc[:1] == ["dimensions"] and len(loc) >= 2 and isinstance(raw, dict):
                owner = f"dimension '{raw['dimensions'][loc[1]].get('id', '?')}', "
                loc = loc[2:]
            elif loc[:1] == [list_key] and len(loc) >= 2 and isinstance(raw, dict):
                owner = f"measure '{raw[list_key][loc[1]].get('id', '?')}', "
                loc = loc[2:]
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        where = ".".join(str(p) for p in loc) or "(file)"
        lines.append(f"{path}: {owner}{where}: {err['msg']}")
    return CatalogError("\n".join(lines))


def _check_model(path: Path, model: ScoringModel, catalog: Catalog) -> None:
    classes = set(catalog.publication.severities)
    for ind in model.indicators():
        def fail(what: str, ind: Indicator = ind) -> None:
            raise CatalogError(f"{path}: indicator '{ind.id}': {what}")

        for ds_id in ind.datasets:
            ds = catalog.datasets.get(ds_id)
            if ds is None:
                fail(f"dataset '{ds_id}' is not in the catalog")
            elif ds.credit is None:
                fail(f"dataset '{ds_id}' has no 'credit' block: it gives the mart no facts")
        if ind.category_of == "severity":
            unknown = set(ind.categories) - classes
            if unknown:
                fail(f"categories {sorted(unknown)} are not severity classes of publication.yaml {sorted(classes)}")
        if ind.category_of == "polarity":
            unknown = set(ind.categories) - {"negative", "positive", "neutral"}
            if unknown:
                fail(f"categories {sorted(unknown)} are not polarities (negative, positive, neutral)")
    for limit in model.grade_limits:
        for ds_id in limit.datasets:
            if ds_id not in catalog.datasets:
                raise CatalogError(f"{path}: grade_limits: dataset '{ds_id}' is not in the catalog")


def load_scoring_models(catalog: Catalog, catalog_dir: Path | None = None) -> ScoringModels:
    """Every ``catalogs/scoring/*.yaml``, validated; models whose dates overlap are refused."""
    folder = catalog_dir_or_default(catalog_dir) / "scoring"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{folder}: no scoring model (*.yaml)")
    models: dict[str, ScoringModel] = {}
    sources: dict[str, Path] = {}
    for path in files:
        raw = read_catalog_file(f"scoring/{path.name}", catalog_dir)
        try:
            model = ScoringModel.model_validate(raw)
        except ValidationError as exc:
            raise _where(exc, raw, path, "measures") from None
        if model.id != path.stem:
            raise CatalogError(f"{path}: id '{model.id}' must equal the file name '{path.stem}'")
        _check_model(path, model, catalog)
        for other in models.values():
            if _overlap(model, other):
                raise CatalogError(f"{path}: in force on the same days as '{other.id}' ({sources[other.id]}); "
                                   "give one an effective_to before the other's effective_from")
        models[model.id], sources[model.id] = model, path
    return ScoringModels(models, sources)


def _overlap(a: ScoringModel, b: ScoringModel) -> bool:
    far = date.max
    return a.effective_from <= (b.effective_to or far) and b.effective_from <= (a.effective_to or far)


def load_warning_rules(catalog: Catalog, catalog_dir: Path | None = None) -> WarningRules:
    path = catalog_dir_or_default(catalog_dir) / "credit_warnings.yaml"
    raw = read_catalog_file("credit_warnings.yaml", catalog_dir)
    try:
        rules = WarningRules.model_validate(raw)
    except ValidationError as exc:
        raise _where(exc, raw, path, "measures") from None
    for ds_id in [*rules.datasets, *rules.steps]:
        if ds_id not in catalog.datasets:
            raise CatalogError(f"{path}: dataset '{ds_id}' is not in the catalog")
    return rules


def load_measures(catalog: Catalog, models: ScoringModels, catalog_dir: Path | None = None) -> list[Measure]:
    path = catalog_dir_or_default(catalog_dir) / "credit_measures.yaml"
    raw = read_catalog_file("credit_measures.yaml", catalog_dir)
    try:
        measures = Measures.model_validate(raw).measures
    except ValidationError as exc:
        raise _where(exc, raw, path, "measures") from None
    grades = {g.grade for m in models.models.values() for g in m.grades}
    classes = set(catalog.publication.severities)
    seen: set[str] = set()
    for m in measures:
        def fail(what: str, m: Measure = m) -> None:
            raise CatalogError(f"{path}: measure '{m.id}': {what}")

        if m.id in seen:
            fail("appears twice")
        seen.add(m.id)
        for ds_id in m.when.datasets:
            if ds_id not in catalog.datasets:
                fail(f"dataset '{ds_id}' is not in the catalog")
        for cls in m.when.severities:
            if cls not in classes:
                fail(f"severity '{cls}' is not a class of publication.yaml")
        for g in m.when.grades:
            if g not in grades:
                fail(f"grade '{g}' is not a grade of any scoring model")
        for office in m.offices:
            if office != "all" and office not in catalog.departments:
                fail(f"office '{office}' is not a department of departments.yaml")
    return measures
