"""Find resident ID numbers in Parquet files: the scan behind "no resident ID leaves the restricted layers".

Every string column of every file is read; a value counts when some 18-character run in it, once
NFKC-folded and stripped of spaces and hyphens, is a valid resident ID (GB 11643 check digit).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from foundation.catalog import get_catalog
from transforms.identifiers import resident_id_reasons

_RUN = re.compile(r"[0-9Xx][0-9Xx\s\-]{13,}[0-9Xx]")


def resident_ids_in(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text)
    found = []
    for run in _RUN.finditer(folded):
        compact = re.sub(r"[\s\-]", "", run.group()).upper()
        for start in range(len(compact) - 17):
            candidate = compact[start:start + 18]
            if not resident_id_reasons(candidate):
                found.append(candidate)
    return found


def _codes_of_their_own_kind() -> set[tuple[str, str]]:
    """(dataset, field) the catalog declares are not ID numbers though they may look like one (``mask_ids:
    false``, e.g. a licence number 371083 + 20220107 + serial, which passes the check one time in 11)."""
    return {(ds.id, f.code) for ds in get_catalog().datasets.values() for f in ds.fields if not f.mask_ids}


def resident_ids_in_parquet(root: Path) -> list[tuple[str, str, str]]:
    """(file, column, ID) for every valid resident ID in a string column under ``root``
    (``<root>/<dataset>/.../*.parquet`` or a release's ``records/<dataset>.parquet``), but in the columns the
    catalog says hold codes of their own kind."""
    hits = []
    exempt = _codes_of_their_own_kind()
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path)
        # The clean layer: <dataset>/<partitions>/part-n.parquet; a publication release: records/<dataset>.parquet.
        dataset = path.stem if path.parent.name == "records" else path.relative_to(root).parts[0]
        for name, column in zip(table.column_names, table.columns, strict=True):
            if (dataset, name) in exempt:
                continue
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                continue
            for value in column.to_pylist():
                if value:
                    hits += [(str(path.relative_to(root)), name, rid) for rid in resident_ids_in(value)]
    return hits
