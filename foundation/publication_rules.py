"""Publication rules as data: rule versions, severity classes and how a record's class is read.

Reads ``catalogs/publication.yaml`` (see its comments). NDRC notice 527, Order No. 58 and
Order No. 36 each give every severity class a minimum and a maximum publication period; which
version governs a record is the ``governing`` setting. Validated on load: versions may not
overlap, every version names every class, every severity rule names a known class.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassTerms(_Model):
    """A severity class's terms under one rule version."""

    publish: bool = True  # False: not published at all (Order No. 36 minor information)
    min_months: Annotated[int, Field(ge=0, le=120)]  # repair possible once this has passed
    max_months: Annotated[int, Field(ge=0, le=120)]  # publication stops automatically here
    repairable: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> ClassTerms:
        if self.min_months > self.max_months:
            raise ValueError("min_months is greater than max_months")
        return self


class RuleVersion(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    name_zh: str
    source: str
    effective_from: date
    effective_to: date | None = None  # inclusive; None: still in force
    classes: dict[str, ClassTerms]

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


class SeverityRule(_Model):
    """Every condition given must hold; the first rule of its set that holds gives the class."""

    severity: str
    kinds_any: list[str] = []
    kinds_only: list[str] = []
    amount_over: float | None = None  # in the amount field's unit (万元)
    contains: dict[str, list[str]] = {}  # field code -> texts; one of them in one of the fields

    @model_validator(mode="after")
    def _has_condition(self) -> SeverityRule:
        if not (self.kinds_any or self.kinds_only or self.amount_over is not None or self.contains):
            raise ValueError("a severity rule needs at least one condition")
        return self


class SeverityRules(_Model):
    kinds_field: str
    amount_field: str | None = None
    rules: Annotated[list[SeverityRule], Field(min_length=1)]

    def fields(self) -> list[str]:
        codes = [self.kinds_field, *([self.amount_field] if self.amount_field else [])]
        return codes + [code for rule in self.rules for code in rule.contains]


class PublicationRules(_Model):
    governing: Literal["decision_date", "publication_date"] = "decision_date"
    severities: dict[str, str]  # class id -> Chinese name, mildest first
    versions: Annotated[list[RuleVersion], Field(min_length=1)]
    severity_rules: dict[str, SeverityRules] = {}

    @model_validator(mode="after")
    def _consistent(self) -> PublicationRules:
        for version in self.versions:
            missing = set(self.severities) - set(version.classes)
            extra = set(version.classes) - set(self.severities)
            if missing or extra:
                raise ValueError(f"version '{version.id}' must give terms for exactly the classes "
                                 f"{sorted(self.severities)} (missing {sorted(missing)}, unknown {sorted(extra)})")
        ordered = sorted(self.versions, key=lambda v: v.effective_from)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if before.effective_to is None or before.effective_to >= after.effective_from:
                raise ValueError(f"versions '{before.id}' and '{after.id}' overlap: each needs an "
                                 "effective_to before the next one's effective_from")
        for name, rule_set in self.severity_rules.items():
            for i, rule in enumerate(rule_set.rules):
                if rule.severity not in self.severities:
                    raise ValueError(f"severity_rules '{name}', rule {i + 1}: unknown class '{rule.severity}'")
        return self

    def version_on(self, day: date) -> RuleVersion | None:
        """The version in force on ``day`` (None before the first one)."""
        return next((v for v in self.versions if v.in_force(day)), None)
