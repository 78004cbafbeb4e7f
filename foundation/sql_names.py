"""Safe SQL identifiers. Table and column names come from the catalog, whose ids and
field codes are restricted by pattern when loaded; this re-checks before quoting so a
name can never carry SQL. Values always travel as bound parameters."""

from __future__ import annotations

import re

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"refusing unsafe SQL identifier {name!r}")
    return f'"{name}"'


def table(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def param(prefix: str, name: str) -> str:
    """A named-parameter placeholder such as ``$allowed_CF_CFLB``."""
    ident(name)
    return f"${prefix}_{name}"
