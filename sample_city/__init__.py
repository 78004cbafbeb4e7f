"""A deterministic sample city (乳山市, division 371083) with known defects, for demos and tests.

``generate(data_root, seed, entities)`` writes

* department feeds to ``<data_root>/inbox/<department>/<file>``: a register of legal entities
  (法人基础信息), licences and penalties (双公示), the five other kinds of administrative
  management information, tax, social insurance, housing fund and utility payments, in CSV
  (UTF-8 with/without BOM, GB18030, one UTF-8 file with a few GB18030 lines), XLSX and JSON
  lines;
* the ground truth to ``<data_root>/truth/``: ``files.csv`` (per file: rows in / loaded /
  quarantined, status) and ``defects.csv`` (per injected defect: file, 1-based data row, field,
  defect, the expected quarantine reason of transforms/reasons.py, or the value expected in
  the clean layer after normalization) and ``timeliness.csv`` (per file: when it was submitted
  and, for datasets with a deadline, how many records were on time, late, undated or outside
  the holiday calendar, counted in Chinese working days with chinesecalendar).

Each feed has a fixed submission time (Asia/Shanghai), written as the file's mtime, which is
what the loader records as received. Decision dates of the datasets with a deadline are set
relative to it: most records on time, a share late, and one deliberately late feed decided
just over 7 working days before it was submitted, across the 2022 National Day holiday and
its adjusted working Saturday.

Every row not listed in ``defects.csv`` is valid: required fields filled, enums allowed, dates
valid and in order, amounts in range, codes valid and registered under the exact same name.
A defective row carries exactly one defect, so it expects exactly one reason.

Same seed -> byte-identical files: no wall-clock time anywhere (dates are fixed around 2022,
XLSX zip entries and document properties carry a fixed timestamp), every random choice comes
from ``random.Random`` seeded with ``f"{seed}/{purpose}"``.

Modules, from the bottom up (each imports only the ones above it in this list): ``names``
(word lists), ``entities`` (people, entities, agencies), ``rows`` (``Row``, ``Feed``,
``Defect``), ``defects`` (the ``Injector``), ``feeds_publicity`` and ``feeds_payment`` (row
builders), ``feeds`` (the file plan), ``writers`` (bytes), ``timeliness`` (submission times),
``truth`` (the truth tables), ``generator`` (``generate`` / ``main``; run it with
``python -m sample_city.generator DATA_ROOT``).

``generate_history(data_root, seed, entities, first="2025-01", last="2026-11")`` writes two years
of the same city instead: one file per period (monthly, weekly where the catalog says) for every
department x dataset the catalog's ``delivery`` rules expect, each submitted after its period
and by its deadline (late for about half the departments around the Spring Festival and
National Day), with department quality that moves in a known way, a department that misses two
months, a corrected re-send and a template switch; penalties of a designed severity mix, attacker
text in valid rows, and the irregular feeds of the serious-dishonesty list and of credit repairs;
the truth adds ``period`` / ``month`` to ``files.csv`` and ``timeliness.csv``, and
``deliveries.csv``, ``quality_design.csv``, ``publication.csv`` (what the credit website shows as of
``PUBLICATION_AS_OF`` under each governing choice), ``repairs.csv``, ``register.csv`` and
``payments.csv`` (the designed rows and their outcome), and ``scores.csv`` / ``warnings.csv`` (every
registered subject's score and grade under the model in force, and the credit-warning list, as of
that day, computed from the designed facts, not by the engine). Its modules:
``history_calendar`` (periods, deadlines, submission times), ``history_plan`` (series, deliveries,
file names), ``history_register`` (the register month by month), ``history_quality`` (designs and
defect plans), ``history_payments`` and ``history_rows`` (the rows of a file), ``history_severity``
(the penalties' classes), ``history_attacks`` (attacker text), ``history_lists`` and
``history_repairs`` (the list and repair feeds), ``history_xlsx`` (workbooks), ``history_truth`` and
``history_publication`` (the truth tables), ``history_scoring`` (the scoring truth), ``history``
(``generate_history`` / ``main``;
``python -m sample_city.history DATA_ROOT``).

The public names below load their module on first use, so ``import sample_city`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sample_city.entities import make_uscc
    from sample_city.generator import generate, main
    from sample_city.history import generate_history
    from sample_city.timeliness import LATE_FEED

__all__ = ["LATE_FEED", "generate", "generate_history", "main", "make_uscc"]

_HOMES = {
    "generate": "generator",
    "generate_history": "history",
    "main": "generator",
    "make_uscc": "entities",
    "LATE_FEED": "timeliness",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
