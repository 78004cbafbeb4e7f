"""The quality report's charts (credit/report.py): matplotlib figures as inline SVG elements.

The labels stay text (``svg.fonttype: none``): searchable, small, drawn by the browser. matplotlib
still lays them out, so the widths of titles, tick labels and legends (and with them the margins
of the constrained layout) come from the font it measures with. The labels are Chinese, so that
font is Noto Sans CJK (Debian package ``fonts-noto-cjk``), found by family name through
matplotlib's font manager; the SVG names it first in its ``font-family`` list, before generic
fallbacks, so a browser draws the text with the font it was measured with.

Without a CJK font the report is still written, laid out with DejaVu Sans (which has no CJK
glyphs, so the Chinese labels' widths are wrong): one logged warning says what to install,
instead of one matplotlib warning per missing glyph.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from credit.report import Group, Rate
    from foundation.catalog import Catalog
    from warehouse.scorecard import Target

log = logging.getLogger(__name__)

# The regional faces of Noto Sans CJK (one .ttc holds them all), Simplified Chinese first; then two
# other CJK fonts a machine may have instead.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK HK", "Noto Sans CJK KR",
                "Source Han Sans SC", "WenQuanYi Zen Hei")
CJK_PACKAGE = "fonts-noto-cjk"
LATIN_FALLBACK = "DejaVu Sans"  # ships with matplotlib: for any glyph the CJK font lacks
MISSING_GLYPH = r"Glyph \d+ \(.*\) missing from font\(s\) "  # matplotlib's _text_helpers.warn_on_missing_glyph


def _installed_cjk_family(font_manager) -> str | None:
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in names), None)


def _add_new_cjk_fonts(font_manager) -> None:
    """matplotlib keeps its font list in a cache file (fontlist-*.json) and does not look again:
    a CJK font installed after that file was written is added here, for this process."""
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts(fontext="ttf"):
        if "cjk" in Path(path).name.lower() and path not in known:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError) as exc:  # an unreadable file: not ours to fix
                log.debug("matplotlib cannot read %s: %s", path, exc)


@functools.cache
def cjk_family() -> str | None:
    """The Noto Sans CJK family matplotlib lays the charts out with; None (and one warning) without it."""
    from matplotlib import font_manager

    family = _installed_cjk_family(font_manager)
    if family is None:
        _add_new_cjk_fonts(font_manager)
        family = _installed_cjk_family(font_manager)
    if family is None:
        log.warning("No CJK font for the report's charts: install the Debian package %s (apt-get install -y %s); "
                    "until then their Chinese labels are laid out with %s, which has no CJK glyphs.",
                    CJK_PACKAGE, CJK_PACKAGE, LATIN_FALLBACK)
    return family


def chart_rc(department: str) -> dict:
    """matplotlib settings of one chart: text kept as text, CJK font first, stable ids per department."""
    family = cjk_family()
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": f"credit-{department}",
        # The SVG's font-family list is this list with "sans-serif" expanded from font.sans-serif:
        # 'Noto Sans CJK SC', 'DejaVu Sans', sans-serif.
        "font.family": [family, "sans-serif"] if family else ["sans-serif"],
        "font.sans-serif": [LATIN_FALLBACK],
        "axes.unicode_minus": False,
        "font.size": 9,
    }


def trend_svg(department: str, batches: list[Group], targets: dict[str, Target], catalog: Catalog,
              names: dict[str, str]) -> str:
    """The department's batches by received date: three rates (%) above, 重错码率 (%) below.

    ``names`` are the metrics' short Chinese names (report.SHORT_NAMES), for the legend.
    """
    import matplotlib
    from matplotlib.figure import Figure

    settings = chart_rc(department)
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        if cjk_family() is None:  # said once, in cjk_family's warning; not once per glyph of every label
            warnings.filterwarnings("ignore", message=MISSING_GLYPH, category=UserWarning)
        codes = [_percent(b.rates.get("code_error")) for b in batches]
        with_codes = not all(math.isnan(c) for c in codes)
        fig = Figure(figsize=(8.5, 4.2 if with_codes else 3.0), layout="constrained")
        if with_codes:
            top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
        else:
            top = bottom = fig.subplots()
        x = list(range(len(batches)))
        for metric, color in (("compliance", "#1f77b4"), ("completeness", "#2ca02c"), ("timeliness", "#ff7f0e")):
            ys = [_percent(b.rates.get(metric)) for b in batches]
            if not all(math.isnan(y) for y in ys):
                top.plot(x, ys, marker="o", color=color, label=names[metric])
        for metric in ("compliance", "timeliness"):
            top.axhline(100 * targets[metric].value, color="#999999", linestyle="--", linewidth=0.8)
        top.set_ylabel("%")
        top.set_ylim(0, 105)
        top.legend(loc="lower left", ncols=3, frameon=False)
        title = "各批次合规率、完整率、及时率（虚线为目标）" + ("；下图为重错码率" if with_codes else "")
        top.set_title(title, loc="left")
        if with_codes:
            bottom.bar(x, codes, color="#d62728", width=0.5)
            bottom.axhline(100 * targets["code_error"].value, color="#999999", linestyle="--", linewidth=0.8)
            bottom.set_ylabel("重错码率 %")
        labels = [f"{b.received_date:%Y-%m-%d}\n{catalog.datasets[b.dataset_id].name_zh if b.dataset_id else ''}"
                  for b in batches]
        bottom.set_xticks(x, labels=labels, rotation=0 if len(x) <= 4 else 30, ha="center" if len(x) <= 4 else "right")
        bottom.set_xlim(-0.5, len(x) - 0.5)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _inline_svg(buffer.getvalue())


def _percent(rate: Rate | None) -> float:
    """A rate in percent for a chart; NaN leaves a gap where there is none."""
    return math.nan if rate is None or rate.rate is None else 100 * rate.rate


def _inline_svg(svg: str) -> str:
    """matplotlib's SVG file as an element for an HTML page: no prolog, metadata or namespace URLs."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return re.sub(r'\s+version="1.1"', "", svg, count=1)
