"""Stage one department file: read it, map its headers through the catalog, and
write it as Parquet for the single warehouse writer to load.

In: a file path, its dataset and department. Out: ``<staging>/<batch_id>/`` with
- ``rows.parquet``: ``_row`` plus one text column per catalog field, values as received;
- ``rejects.parquet``: records that cannot be loaded at all, with reasons and the
  record as received (JSON);
- ``manifest.json``: lineage (file name, sha256, size, format, encoding, received
  time), the header map, file-level reasons, ``rows_in`` and the reader's ``notes`` (title
  lines skipped, delimiter, sheets read or skipped).
The reader finds the header with the dataset's catalog (``header_matcher``); a file it cannot
read at all is rejected with the FeedError's reason and bilingual message, no rows.
The folder appears atomically (written under a temporary name, then renamed).
Staging touches no database, so any number of files can be staged in parallel.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from foundation.catalog import Dataset, header_key
from foundation.parquet_out import write_query
from foundation.sql_names import ident
from transforms.read_feed import DELIMITERS, Feed, FeedError, HeaderMatch, Reject, read_feed

REJECT_SCHEMA = pa.schema(
    [("_row", pa.int64()), ("reasons", pa.list_(pa.string())), ("record", pa.string())]
)
MAX_QUARANTINED_VALUE = 10_000  # longer values are cut in quarantine; the archived file keeps them


@dataclass
class Manifest:
    batch_id: str
    dataset_id: str
    department: str
    source_file: str
    file_sha256: str
    file_bytes: int
    received_at: str
    format: str = ""
    encoding: str = ""
    headers: list[str] = field(default_factory=list)
    header_map: dict[str, str] = field(default_factory=dict)
    unmapped_headers: list[str] = field(default_factory=list)
    file_reasons: list[str] = field(default_factory=list)
    file_message: str = ""
    rows_staged: int = 0
    rows_rejected: int = 0
    notes: list[str] = field(default_factory=list)  # what the reader did that a reviewer should know

    @property
    def rows_in(self) -> int:
        return self.rows_staged + self.rows_rejected

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls(**json.loads((folder / "manifest.json").read_text(encoding="utf-8")))


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def batch_id_for(dataset_id: str, sha256: str) -> str:
    """Same dataset and same bytes -> same batch: a file dropped twice is one batch."""
    return f"{dataset_id}-{sha256[:16]}"


def _aliases(dataset: Dataset) -> dict[str, str]:
    """header_key of every code, Chinese name and alias -> the field code."""
    return {
        header_key(alias): spec.code for spec in dataset.fields for alias in (spec.code, spec.name_zh, *spec.aliases)
    }


def header_matcher(dataset: Dataset) -> HeaderMatch:
    """What the reader needs from the catalog: which field (if any) a header text names.

    It finds the header line below title lines, the delimiter, and a workbook's data sheets with it.
    """
    aliases = _aliases(dataset)

    def match(header: str) -> str | None:
        return aliases.get(header_key(header))

    return match


def map_headers(headers: list[str], dataset: Dataset) -> tuple[dict[int, str], list[str], list[str]]:
    """Header index -> field code, the unmapped headers, and file-level reasons."""
    aliases = _aliases(dataset)
    mapping: dict[int, str] = {}
    unmapped: list[str] = []
    reasons: list[str] = []
    for index, header in enumerate(headers):
        code = aliases.get(header_key(header))
        if code is None:
            unmapped.append(header)
        elif code in mapping.values():
            reasons.append(f"duplicate_header:{code}")
        else:
            mapping[index] = code
    if not mapping:
        return mapping, unmapped, ["unrecognized_header"]
    present = set(mapping.values())
    reasons += [f"missing_required_column:{f.code}" for f in dataset.fields if f.required and f.code not in present]
    return mapping, unmapped, reasons


def _record_json(headers: list[str], values: list[str | None]) -> str:
    record: dict[str, str | None] = {}
    for header, value in zip(headers, values, strict=False):
        key = header if header not in record else f"{header}#{len(record) + 1}"
        record[key] = (
            value if value is None or len(value) <= MAX_QUARANTINED_VALUE else value[:MAX_QUARANTINED_VALUE] + "…"
        )
    return json.dumps(record, ensure_ascii=False)


def _reject_batch(rejects: list[Reject], extra_reasons: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "_row": [r.row for r in rejects],
            "reasons": [[r.reason, *extra_reasons] for r in rejects],
            "record": [json.dumps({"_raw": r.raw[:MAX_QUARANTINED_VALUE]}, ensure_ascii=False) for r in rejects],
        },
        schema=REJECT_SCHEMA,
    )


def row_schema(dataset: Dataset) -> pa.Schema:
    return pa.schema([("_row", pa.int64())] + [(c, pa.string()) for c in dataset.field_codes])


def _csv_in_duckdb(
    path: Path, width: int, mapping: dict[int, str], dataset: Dataset, folder: Path, skip: int = 1, delimiter: str = ","
) -> int:
    """A well-formed UTF-8 CSV through DuckDB's parallel reader, straight to rows.parquet.

    ``skip`` counts the CSV rows before the first record (title and blank lines, the header; DuckDB's
    own count), ``delimiter`` is the one the reader found on the header line.

    Strict mode refuses a ragged row and invalid UTF-8 (duckdb.Error): the caller then
    reads the file line by line. Row order is preserved, so a record's ordinal is its position
    in rows.parquet: ``_row`` stays NULL (numbering rows would cost an ordered window over the
    whole file); readers take ``coalesce(_row, file_row_number + 1)``, see ``STAGED_ROWS``.
    """
    from foundation.settings import get_settings

    if delimiter not in DELIMITERS:
        raise ValueError(f"unexpected delimiter {delimiter!r}")
    settings = get_settings()
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    by_code = {code: i for i, code in mapping.items()}
    select = ", ".join(
        f"c{by_code[code]} AS {ident(code)}" if code in by_code else f"NULL::VARCHAR AS {ident(code)}"
        for code in dataset.field_codes
    )
    con = duckdb.connect(config={"threads": settings.duckdb_threads, "memory_limit": settings.duckdb_memory_limit})
    try:
        return write_query(
            con,
            f"""SELECT NULL::BIGINT AS _row, {select}
                FROM read_csv(?, header = false, skip = {int(skip)}, delim = '{delimiter}', quote = '"', escape = '"',
                              columns = {columns}, strict_mode = true, auto_detect = false)""",
            [str(path)],
            folder / "rows.parquet",
        )
    finally:
        con.close()


def _write(feed: Feed, dataset: Dataset, manifest: Manifest, folder: Path) -> None:
    """Stream the feed into rows.parquet (or all of it into rejects when the file is rejected)."""
    mapping, unmapped, file_reasons = map_headers(feed.headers, dataset)
    manifest.header_map = {feed.headers[i]: code for i, code in mapping.items()}
    manifest.unmapped_headers = unmapped
    manifest.file_reasons = file_reasons
    manifest.format = feed.format
    manifest.headers = feed.headers
    manifest.notes = feed.notes  # the reader adds to them while it reads
    if feed.fast_csv and feed.headers and not file_reasons:
        try:
            manifest.rows_staged = _csv_in_duckdb(
                feed.path, len(feed.headers), mapping, dataset, folder, feed.skip_rows, feed.delimiter
            )
            manifest.encoding = "utf-8"
            pq.write_table(REJECT_SCHEMA.empty_table(), folder / "rejects.parquet")
            return
        except duckdb.Error:
            pass  # ragged rows, another encoding, a field too large: read it line by line
    schema = row_schema(dataset)
    rows_writer = pq.ParquetWriter(folder / "rows.parquet", schema, compression="zstd")
    reject_writer = pq.ParquetWriter(folder / "rejects.parquet", REJECT_SCHEMA, compression="zstd")
    staged = rejected = 0
    try:
        for batch in feed.batches():
            if file_reasons:
                # The file as a whole cannot be trusted: every record goes to quarantine as received.
                columns = [batch.column(str(i)).to_pylist() for i in range(len(feed.headers))]
                records = [_record_json(feed.headers, list(vals)) for vals in zip(*columns, strict=True)]
                reject_writer.write_batch(
                    pa.RecordBatch.from_pydict(
                        {"_row": batch.column("_row"), "reasons": [file_reasons] * batch.num_rows, "record": records},
                        schema=REJECT_SCHEMA,
                    )
                )
                rejected += batch.num_rows
                continue
            arrays = [batch.column("_row")]
            by_code = {code: batch.column(str(i)) for i, code in mapping.items()}
            for code in dataset.field_codes:
                arrays.append(by_code.get(code, pa.nulls(batch.num_rows, pa.string())))
            rows_writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            staged += batch.num_rows
        if feed.rejects:
            reject_writer.write_batch(_reject_batch(feed.rejects, file_reasons))
            rejected += len(feed.rejects)
    finally:
        rows_writer.close()
        reject_writer.close()
    manifest.format = feed.format
    manifest.encoding = feed.encoding
    manifest.headers = feed.headers
    manifest.rows_staged = staged
    manifest.rows_rejected = rejected


def stage_file(
    path: Path,
    dataset: Dataset,
    department: str,
    staging_root: Path,
    received_at: datetime | None = None,
) -> Path:
    """Stage ``path`` and return the staged folder ``<staging_root>/<batch_id>``.

    The file is hashed (its batch id) in a thread while it is read: one pass less over a large file.
    """
    received = received_at or datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    manifest = Manifest(
        batch_id="",
        dataset_id=dataset.id,
        department=department,
        source_file=path.name,
        file_sha256="",
        file_bytes=path.stat().st_size,
        received_at=received.isoformat(),
    )
    staging_root.mkdir(parents=True, exist_ok=True)
    tmp = staging_root / f".{dataset.id}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(file_sha256, path)
            try:
                feed = read_feed(path, header_matcher(dataset))
                _write(feed, dataset, manifest, tmp)
            except FeedError as exc:
                manifest.file_reasons = [exc.reason]
                manifest.file_message = str(exc)
                pq.write_table(row_schema(dataset).empty_table(), tmp / "rows.parquet")
                pq.write_table(REJECT_SCHEMA.empty_table(), tmp / "rejects.parquet")
            manifest.file_sha256 = digest.result()
        batch_id = manifest.batch_id = batch_id_for(dataset.id, manifest.file_sha256)
        (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
        final = staging_root / batch_id
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final
