from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("SCARF_ANALYTICS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest  # noqa: E402

from credit.catalog import get_catalog  # noqa: E402
from credit.settings import Settings, get_settings  # noqa: E402


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """A fresh, empty data root for one test."""
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / "data"))
    return get_settings()


@pytest.fixture(scope="session")
def catalog():
    return get_catalog()
