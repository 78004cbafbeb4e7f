"""What a feed is made of before it is written: ``Row``, ``Feed`` and a row's ``Defect``.

In: values from the feed builders, entities from ``entities``. Out: the mutable records the
builders fill, ``defects`` and ``timeliness`` change, and ``writers`` turn into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from foundation.catalog import Dataset
from sample_city.entities import Entity

UNDECODABLE = "\ue000"  # placeholder replaced by b"\xff\xfe" when the line is encoded


@dataclass
class Defect:
    defect: str
    field: str
    reason: str  # expected quarantine reason ('' when the row loads)
    outcome: str  # quarantine | normalized
    expected_value: str = ""


@dataclass
class Row:
    values: dict[str, object]
    entity: Entity | None = None
    spare: bool = False  # register row of an entity no other feed mentions
    defect: Defect | None = None
    extra: str | None = None  # ragged: one more column than the header
    broken: bool = False  # carries bytes that are neither UTF-8 nor GB18030
    gb18030: bool = False  # a GB18030 line inside a UTF-8 file
    numeric: set[str] = field(default_factory=set)  # XLSX cells written as numbers


@dataclass
class Feed:
    department: str
    file_name: str
    dataset: Dataset
    fmt: str  # csv | xlsx | jsonl
    encoding: str  # utf-8-sig | utf-8 | gb18030 | utf-8+gb18030 ('' for xlsx)
    columns: list[str]
    rows: list[Row]
    headers: dict[str, str] = field(default_factory=dict)  # field code -> header written
    rejected: bool = False  # header matches nothing: every row unrecognized_header
    newline: str = "\n"
    submitted_at: datetime | None = None  # Asia/Shanghai; the file's mtime

    @property
    def path(self) -> str:
        return f"{self.department}/{self.file_name}"
