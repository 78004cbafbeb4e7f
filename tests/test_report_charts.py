"""The report's charts (credit/report_charts.py): Chinese labels laid out with a CJK font, kept as SVG text.

With Noto Sans CJK installed (``make test`` installs ``fonts-noto-cjk``), matplotlib measures the
labels with it: no "Glyph ... missing from font(s)" warning, and the SVG names it first in its
font-family list. Without a CJK font the chart is still drawn, with one logged warning naming the
package instead of a warning per glyph.
"""

from __future__ import annotations

import logging
import re
import warnings
from datetime import date
from html import unescape

import pytest

from credit import report_charts
from credit.report import SHORT_NAMES, Group, Rate
from credit.report_charts import CJK_PACKAGE, cjk_family, trend_svg
from warehouse.scorecard import load_targets

pytestmark = pytest.mark.unit
DEPARTMENT = "市场监管局"


def _rate(metric: str, value: float) -> Rate:
    return Rate(metric, 9, 10, value, 0.9, "max" if metric == "code_error" else "min", True)


@pytest.fixture
def batches(catalog) -> list[Group]:
    """Five batches of five datasets (more than four: the tick labels are rotated), with 重错码率."""
    values = {"compliance": 0.93, "completeness": 0.88, "timeliness": 0.97, "code_error": 0.004}
    return [Group(key=f"batch-{i}", name=f"batch-{i}", received_date=date(2026, 3, 2 + i), dataset_id=dataset_id,
                  rates={m: _rate(m, v - 0.01 * i * (m != "code_error")) for m, v in values.items()})
            for i, dataset_id in enumerate(sorted(catalog.datasets)[:5])]


@pytest.fixture
def targets(settings):
    return load_targets(settings.catalog_dir)


def _render(batches, targets, catalog) -> tuple[str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svg = trend_svg(DEPARTMENT, batches, targets, catalog, SHORT_NAMES)
    return svg, [str(w.message) for w in caught]


def _texts(svg: str) -> list[tuple[str, str]]:
    """(style, text) of every <text> element."""
    return [(unescape(style), unescape(text))
            for style, text in re.findall(r'<text[^>]*\bstyle="([^"]*)"[^>]*>([^<]*)</text>', svg)]


def test_chinese_labels_are_laid_out_with_the_cjk_font(batches, targets, catalog):
    family = cjk_family()
    if family is None:
        pytest.skip(f"No Noto Sans CJK font for matplotlib: apt-get install -y {CJK_PACKAGE} (make test does)")
    svg, messages = _render(batches, targets, catalog)

    assert [m for m in messages if "missing from font" in m] == []
    texts = _texts(svg)
    shown = {text for _, text in texts}
    assert {"合规率", "完整率", "及时率", "重错码率 %"} <= shown
    assert any(t.startswith("各批次合规率") for t in shown)
    assert {catalog.datasets[b.dataset_id].name_zh for b in batches} <= shown
    assert "<image" not in svg
    for style, _ in texts:  # the CJK font first, then generic fallbacks for the browser
        assert re.search(rf"font-family: '{family}', 'DejaVu Sans', sans-serif(;|$)", style), style


def test_without_a_cjk_font_one_warning_names_the_package(batches, targets, catalog, monkeypatch, caplog):
    monkeypatch.setattr(report_charts, "CJK_FAMILIES", ("No Such CJK Font",))
    cjk_family.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="credit.report_charts"):
            svg, messages = _render(batches, targets, catalog)
            svg_again, messages_again = _render(batches, targets, catalog)
    finally:
        cjk_family.cache_clear()

    assert [m for m in messages + messages_again if "missing from font" in m] == []
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert CJK_PACKAGE in warned[0].getMessage() and "\n" not in warned[0].getMessage()
    texts = _texts(svg)
    assert "合规率" in {text for _, text in texts}  # still drawn, labels still text
    assert all("font-family: 'DejaVu Sans', sans-serif" in style for style, _ in texts)
    assert svg == svg_again
