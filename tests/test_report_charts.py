"""The report's charts (credit/report_charts.py): Chinese labels laid out with a CJK font, kept as SVG text.

The charts are small multiples of monthly series (one SVG per department or dataset, one small chart
per rate); a month without data breaks the line.

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
from credit.report import SHORT_NAMES, Series, add_months
from credit.report_charts import CJK_PACKAGE, cjk_family, monthly_svg
from warehouse.scorecard import METRICS

pytestmark = pytest.mark.unit
DEPARTMENT = "market_regulation"
MONTHS = [add_months(date(2025, 1, 1), i) for i in range(14)]
GAP = 5  # 2025-06: no deliveries


@pytest.fixture
def series() -> dict[str, Series]:
    """Fourteen months of the five rates, 2025-06 without data, the last month below target."""
    values = {"compliance": 0.993, "completeness": 0.996, "timeliness": 0.97, "code_error": 0.00005,
              "correction": 0.96}
    targets = {"compliance": 0.99, "completeness": 0.99, "timeliness": 0.95, "code_error": 0.0001,
               "correction": 0.95}
    out = {}
    for metric in METRICS:
        direction = "max" if metric == "code_error" else "min"
        step = 0.00001 if metric == "code_error" else 0.001
        points = [(m, None if i == GAP else values[metric] + step * ((i % 3) - 1)) for i, m in enumerate(MONTHS)]
        points[-1] = (MONTHS[-1], targets[metric] + (0.0002 if direction == "max" else -0.02))
        out[metric] = Series(metric, points, targets[metric], direction, frozenset({MONTHS[-1]}))
    return out


def _render(series) -> tuple[str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svg = monthly_svg("department", DEPARTMENT, series, SHORT_NAMES)
    return svg, [str(w.message) for w in caught]


def _texts(svg: str) -> list[tuple[str, str]]:
    """(style, text) of every <text> element."""
    return [(unescape(style), unescape(text))
            for style, text in re.findall(r'<text[^>]*\bstyle="([^"]*)"[^>]*>([^<]*)</text>', svg)]


def test_chinese_labels_are_laid_out_with_the_cjk_font(series):
    family = cjk_family()
    if family is None:
        pytest.skip(f"No Noto Sans CJK font for matplotlib: apt-get install -y {CJK_PACKAGE} (make test does)")
    svg, messages = _render(series)

    assert [m for m in messages if "missing from font" in m] == []
    texts = _texts(svg)
    shown = {text for _, text in texts}
    assert {"合规率", "完整率", "及时率", "重错码率", "纠正率"} <= shown  # one small chart per rate
    assert {"2025-01", "2025-07", "2026-01"} <= shown  # month labels
    assert any(t.endswith("‱") for t in shown) and any(t.endswith("%") for t in shown)
    assert "<image" not in svg
    for style, _ in texts:  # the CJK font first, then generic fallbacks for the browser
        assert re.search(rf"font-family: '{family}', 'DejaVu Sans', sans-serif(;|$)", style), style


def test_without_a_cjk_font_one_warning_names_the_package(series, monkeypatch, caplog):
    monkeypatch.setattr(report_charts, "CJK_FAMILIES", ("No Such CJK Font",))
    cjk_family.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="credit.report_charts"):
            svg, messages = _render(series)
            svg_again, messages_again = _render(series)
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


def test_the_gap_breaks_the_line_and_the_svg_says_how_many_points(series):
    svg, _ = _render(series)
    assert 'data-points="compliance:13 completeness:13 timeliness:13 code_error:13 correction:13"' in svg
    for metric in METRICS:
        path = re.search(rf'<g id="trend-department-{DEPARTMENT}-{metric}">\s*<path d="([^"]*)"', svg).group(1)
        assert path.count("M") == 2, metric  # two pieces: before and after the month without data


def test_every_reference_in_the_svg_resolves_and_no_id_repeats_across_charts(series):
    one, _ = _render(series)
    other = monthly_svg("dataset", DEPARTMENT, series, SHORT_NAMES)  # same code, other kind
    for svg in (one, other):
        ids = re.findall(r'\bid="([^"]+)"', svg)
        assert len(ids) == len(set(ids))
        for ref in re.findall(r'(?:xlink:href="#|url\(#)([^")]+)', svg):
            assert ref in ids, ref
    assert not set(re.findall(r'\bid="([^"]+)"', one)) & set(re.findall(r'\bid="([^"]+)"', other))
    assert "figure_1" not in one and "axes_1" not in one  # matplotlib's per-artist ids are dropped
