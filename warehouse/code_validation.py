"""Validate a stream of codes block by block (``credit codes validate``).

In: lines of text, one code each. Out: one JSON object per input line, in order:
``input``, ``normalized``, ``kind`` (uscc / org_code / resident_id / unknown),
``valid`` and ``reasons``. The verdicts come from the vectorized identifier engine
(transforms/identifiers_arrow.py, the same checks as the pipeline's SQL, tested equal to the
Python reference). The text is byte for byte what DuckDB's ``to_json`` wrote before
(tests/test_codes_cli.py compares them): no spaces, non-ASCII characters as they are, only
``"``, ``\\`` and the control characters escaped (``\\b \\t \\n \\f \\r``, the others ``\\u00XX``).

``validate_file(source, out)``: bytes in, bytes out, 2 MiB of input at a time, so memory stays
bounded whatever the size of the input. The lines are those Python's text mode gave before:
of a file, lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (universal newlines) and bytes that are not
UTF-8 read as U+FFFD (``errors="replace"``); of standard input (``stdin=True``), lines end at
``\\n`` only, lose the ``\\r`` before it (``line.rstrip("\\r\\n")``), and bytes that are not UTF-8
are an error (a ValueError with the same message as before). Each block becomes one Arrow
string array (numpy finds the line ends), goes through the engine, and its JSON lines are put
together by one Arrow ``take`` over the pieces of all its rows (the input, the normalized
code, and two constants per distinct verdict); the result is written as it is. Blocks are
validated one per CPU at once (numpy and Arrow release the GIL; at most 4), while the next one
is read and the previous one written.

``validate_lines(lines)``: the same objects as str, for an iterable of lines (a trailing
``\\r`` / ``\\n`` is dropped).

No pandas, no DuckDB: ``pa.array``, ``pa.scalar``, ``to_numpy`` and Python values given to
compute functions make pyarrow import pandas (half a second), so Arrow and numpy meet here
through buffers only.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.arrow_buffers import string_buffers, strings_from_bytes, to_arrow
from transforms.identifiers_arrow import KIND_NAMES, REASONS, code_verdicts

BLOCK_BYTES = 1 << 21  # input read at a time: 2 MiB, about 110,000 codes
BATCH_LINES = 200_000  # lines validated at once (a block of empty lines holds millions)
IN_FLIGHT = min(4, os.cpu_count() or 1)  # blocks validated at once (one per CPU)
KINDS = ("uscc", "org_code", "resident_id")

_EMPTY = 1 << REASONS.index("empty")  # the only reason of a row whose normalized code is null
_KIND_SHIFT = len(REASONS)  # a verdict key: reason bits | kind << _KIND_SHIFT
_HEAD = b'{"input":"'
_TRAILING_CR = re.compile(rb"\r+(?=\n)|\r+\Z")

# JSON string escapes, as DuckDB's to_json writes them.
_SHORT_ESCAPES = {0x08: b"b", 0x09: b"t", 0x0A: b"n", 0x0C: b"f", 0x0D: b"r", 0x22: b'"', 0x5C: b"\\"}
_ESCAPED_SIZE = np.ones(256, np.int64)  # bytes each input byte takes in the JSON text
_ESCAPED_SIZE[:0x20] = 6  # \u00XX
_ESCAPED_SIZE[list(_SHORT_ESCAPES)] = 2
_SHORT = np.zeros(256, np.uint8)
_SHORT[list(_SHORT_ESCAPES)] = np.frombuffer(b"".join(_SHORT_ESCAPES.values()), np.uint8)
_HEX = np.frombuffer(b"0123456789ABCDEF", np.uint8)


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}")


def validate_file(
    source: BinaryIO, out: BinaryIO, kind: str | None = None, *, stdin: bool = False, block_bytes: int = BLOCK_BYTES
) -> None:
    """Write the JSON line of each line of ``source`` to ``out``, lines split as Python's text
    mode split a file (or, with ``stdin``, standard input)."""
    _check_kind(kind)
    _json_lines(_texts(["91110000600037341L", "ｘ"]), kind)  # the engine's lookup tables, built once
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending: deque = deque()
        for block in _blocks(source, block_bytes, universal_newlines=not stdin):
            pending.append(pool.submit(_json_block, block, kind, stdin))
            if len(pending) > IN_FLIGHT:  # written while the workers validate the next ones
                _write(out, pending.popleft().result())
        while pending:
            _write(out, pending.popleft().result())


def _write(out: BinaryIO, texts: list[memoryview]) -> None:
    for text in texts:
        out.write(_HEAD)  # (each text lacks the head of its first line)
        out.write(text)


def validate_lines(lines: Iterable[str], kind: str | None = None) -> Iterator[str]:
    """The JSON object of each line, as str; a trailing \\r or \\n of a line is dropped."""
    _check_kind(kind)
    stream = iter(lines)
    while batch := list(islice(stream, BATCH_LINES)):
        codes = _texts(line.rstrip("\r\n") for line in batch)
        yield from (_HEAD + _json_lines(codes, kind)).decode("utf-8").split("\n")[:-1]


# --- reading ----------------------------------------------------------------------------------


def _blocks(source: BinaryIO, block_bytes: int, universal_newlines: bool) -> Iterator[bytes]:
    """``source`` in blocks of whole lines (the last one may lack its line end)."""
    carry = b""
    while True:
        chunk = source.read(block_bytes)
        if not chunk:
            if carry:
                yield carry
            return
        data = carry + chunk if carry else chunk
        if universal_newlines:
            # A \r at the very end may be the first half of a \r\n: it waits for the next read.
            end = len(data) - 1 if data.endswith(b"\r") else len(data)
            cut = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1
        else:
            cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: a long line
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut] if cut < len(data) else data


def _lines(block: bytes, stdin: bool) -> pa.StringArray:
    """The lines of a block, as Python's text mode read them from a file or standard input."""
    if stdin:  # lines end at \n only, and lose the \r before it
        unterminated = not block.endswith(b"\n")  # (a last line "\r" is a line, "")
        if b"\r" in block:
            block = _TRAILING_CR.sub(b"", block)
    else:  # universal newlines
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        unterminated = not block.endswith(b"\n")
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 0x0A)
    if unterminated:
        ends = np.append(ends, len(block))  # the last line, without a line end
    n = len(ends)
    offsets = np.zeros(n + 1, np.int32)
    offsets[1:] = ends - np.arange(n)  # the line ends are dropped from the data
    data = block.replace(b"\n", b"")
    lines = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    if not data.isascii():
        try:
            lines.validate(full=True)  # UTF-8
        except pa.ArrowInvalid:
            if stdin:  # an error, as before: read with surrogateescape, which Arrow refused
                for line in block.split(b"\n"):
                    line.decode("utf-8", "surrogateescape").encode("utf-8")  # UnicodeEncodeError
            return _lines(block.decode("utf-8", "replace").encode("utf-8"), stdin)
    return lines


def _texts(texts: Iterable[str]) -> pa.StringArray:
    return strings_from_bytes([text.encode("utf-8") for text in texts])


# --- writing ----------------------------------------------------------------------------------


def _json_block(block: bytes, kind: str | None, stdin: bool) -> list[memoryview]:
    """The JSON lines of a block, a batch of at most BATCH_LINES lines at a time (a block of
    empty lines holds millions)."""
    lines = _lines(block, stdin)
    return [_json_lines(lines.slice(start, BATCH_LINES), kind) for start in range(0, len(lines), BATCH_LINES)]


def _json_lines(codes: pa.StringArray, kind: str | None) -> memoryview:
    """The JSON lines of ``codes``, each ending with \\n, as one buffer, but for the ``_HEAD``
    of the first line."""
    n = len(codes)
    raw, normalized, kinds, bits = code_verdicts(codes, kind)
    # Per row four pieces: the input, what comes between it and the normalized code (which
    # tells null), the normalized code ('' when null) and the rest of the line, with the head
    # of the next line. Both constants depend on the verdict only: one per distinct verdict.
    keys = pc.dictionary_encode(to_arrow(bits | kinds.astype(np.uint32) << np.uint32(_KIND_SHIFT)))
    distinct, verdicts = _numbers(keys.dictionary, np.uint32), _numbers(keys.indices, np.int32)
    constants = [piece for key in distinct.tolist() for piece in _verdict_pieces(key)]
    escaped_raw, raw_rows = _escaped(raw)
    escaped_normalized, normalized_rows = _escaped(normalized)
    pieces = pa.concat_arrays([raw, normalized, strings_from_bytes(constants), escaped_raw, escaped_normalized])
    constants_at = 2 * n
    take = np.empty((n, 4), np.int32)
    take[:, 0] = np.arange(n)
    take[:, 1] = constants_at + 2 * verdicts
    take[:, 2] = np.arange(n, 2 * n)
    take[:, 3] = take[:, 1] + 1
    escaped_at = constants_at + len(constants)
    take[raw_rows, 0] = escaped_at + np.arange(len(raw_rows))
    take[normalized_rows, 2] = escaped_at + len(raw_rows) + np.arange(len(normalized_rows))
    lines = pieces.take(to_arrow(take.reshape(-1)))
    _, offsets_buffer, data_buffer = lines.buffers()
    first, last = np.frombuffer(offsets_buffer, np.int32)[[lines.offset, lines.offset + len(lines)]]
    return memoryview(data_buffer)[first : last - len(_HEAD)]  # without the head of a next line


def _verdict_pieces(key: int) -> tuple[bytes, bytes]:
    """(between the input and the normalized code, after it up to the next line's input)."""
    bits, kind = key & ((1 << _KIND_SHIFT) - 1), KIND_NAMES[key >> _KIND_SHIFT]
    reasons = ",".join(f'"{reason}"' for i, reason in enumerate(REASONS) if bits >> i & 1)
    tail = f',"kind":"{kind}","valid":{"false" if bits else "true"},"reasons":[{reasons}]}}\n'
    if bits == _EMPTY:  # normalized is null
        return b'","normalized":null', tail.encode() + _HEAD
    return b'","normalized":"', b'"' + tail.encode() + _HEAD


def _escaped(values: pa.StringArray) -> tuple[pa.StringArray, np.ndarray]:
    """(the JSON-escaped text of the values that need escaping, their rows)."""
    offsets, data = string_buffers(values)
    special = np.flatnonzero((data < 0x20) | (data == 0x22) | (data == 0x5C))
    if not special.size:
        return strings_from_bytes([]), special
    rows = np.unique(np.searchsorted(offsets, special, side="right") - 1)
    offsets, data = string_buffers(values.take(to_arrow(rows)))
    size = _ESCAPED_SIZE[data]
    at = np.zeros(len(data) + 1, np.int64)  # where each byte's text starts
    np.cumsum(size, out=at[1:])
    out = np.empty(at[-1], np.uint8)
    start = at[:-1]
    plain = size == 1
    out[start[plain]] = data[plain]
    two = np.flatnonzero(size == 2)
    out[start[two]] = ord("\\")
    out[start[two] + 1] = _SHORT[data[two]]
    six = np.flatnonzero(size == 6)
    for i, byte in enumerate(b"\\u00"):
        out[start[six] + i] = byte
    out[start[six] + 4] = _HEX[data[six] >> 4]
    out[start[six] + 5] = _HEX[data[six] & 0xF]
    new_offsets = at[offsets].astype(np.int32)
    return pa.StringArray.from_buffers(len(rows), pa.py_buffer(new_offsets), pa.py_buffer(out)), rows


# --- Arrow plumbing (buffers only: pa.array and to_numpy would import pandas; transforms/arrow_buffers.py)


def _numbers(values: pa.Array, dtype: type) -> np.ndarray:
    """A fixed-width Arrow array without nulls as numpy (zero-copy)."""
    return np.frombuffer(values.buffers()[1], dtype)[values.offset : values.offset + len(values)]
