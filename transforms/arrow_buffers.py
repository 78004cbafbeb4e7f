"""numpy and Arrow meeting through buffers, for the vectorized code engine and `credit codes validate`.

``pa.array``, ``pa.scalar``, ``Array.to_numpy`` and Python values handed to compute functions make
pyarrow import pandas: half a second, most of the time `credit codes validate` takes to answer one
code. These helpers build and read arrays from their buffers instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def to_arrow(values: np.ndarray) -> pa.Array:
    """A 1-D numpy array of booleans or integers as an Arrow array (zero-copy but for booleans)."""
    if values.dtype == np.bool_:
        bits = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, bits])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def strings_from_bytes(items: list[bytes]) -> pa.StringArray:
    """UTF-8 byte strings as a string array (no nulls)."""
    offsets = np.zeros(len(items) + 1, np.int32)
    np.cumsum([len(item) for item in items], out=offsets[1:])
    return pa.StringArray.from_buffers(len(items), pa.py_buffer(offsets), pa.py_buffer(b"".join(items)))


def strings(texts: list[str]) -> pa.StringArray:
    """A list of str as a string array (no nulls)."""
    return strings_from_bytes([text.encode("utf-8") for text in texts])


def string_buffers(values: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """(value offsets from 0, data bytes) of a string array; null values hold no bytes."""
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32)[values.offset : values.offset + len(values) + 1]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return offsets - offsets[0], np.zeros(0, np.uint8)
    return offsets - offsets[0], np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]]
