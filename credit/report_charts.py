"""The quality report's charts (credit/report.py): matplotlib figures as inline SVG elements.

Trends are small multiples (``monthly_svg``): for each department, and for each dataset, one SVG
with a row of five small charts, one per rate, each the group's own monthly series over the same
months (up to 24) with its target as a dashed line. A month without deliveries is NaN, so the line
breaks there: a gap, never a zero. Each small chart's y-axis is scaled to where its values and
target are (``y_limits``): 96.6%–100.4% for a rate between 97% and 100%, not 0–100%; 重错码率 is
drawn in ‱ while it stays under 1% (``rate_unit``). Each SVG element carries ``data-points`` and
``data-series`` (``series_attributes``) so that a test can count a series' points and find its
gaps in the page.

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
import html
import io
import json
import logging
import math
import re
import warnings
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from credit.report import Series

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


# --- monthly small multiples ------------------------------------------------------------------------

LINE = "#1f5fa8"
MISSED = "#d62728"
MET = "#2e7d32"
TARGET_LINE = "#8c8c8c"
MIN_SPAN = 0.005  # a rate's axis spans at least 0.5 percentage points ...
MIN_SPAN_CODE_ERROR = 0.0001  # ... 重错码率's at least 1‱
PADDING = 0.12  # of the span, above and below
PERMYRIAD_BELOW = 0.01  # 重错码率 is shown in ‱ while the values and the target stay under 1%


def rate_unit(metric: str, values: list[float | None], target: float | None) -> tuple[float, str]:
    """(factor, unit) a rate is shown in: 重错码率 in ‱ while it stays under 1%, everything else in %."""
    if metric == "code_error":
        seen = [v for v in [*values, target] if v is not None and not math.isnan(v)]
        if not seen or max(seen) < PERMYRIAD_BELOW:
            return 10000.0, "‱"
    return 100.0, "%"


def y_limits(metric: str, values: list[float | None], target: float | None) -> tuple[float, float]:
    """The y-axis of one small chart, in rate units (0.99 = 99%): where the values and the target are.

    The span from the lowest to the highest of the values and the target, at least ``MIN_SPAN``
    (重错码率: ``MIN_SPAN_CODE_ERROR``) and widened evenly when narrower, plus ``PADDING`` of it on
    both sides; never more than that padding below 0 or above 100%. A series between 97% and 100%
    with a 99% target gets about 96.6%–100.4%, not 0–100%.
    """
    seen = [v for v in [*values, target] if v is not None and not math.isnan(v)]
    if not seen:
        return 0.0, 1.0
    lo, hi = min(seen), max(seen)
    floor = MIN_SPAN_CODE_ERROR if metric == "code_error" else MIN_SPAN
    if hi - lo < floor:
        middle = (lo + hi) / 2
        lo, hi = middle - floor / 2, middle + floor / 2
        if lo < 0:
            lo, hi = 0.0, floor
        elif hi > 1:
            lo, hi = 1 - floor, 1.0
    pad = PADDING * (hi - lo)
    return max(lo - pad, -pad), min(hi + pad, 1 + pad)


def _ticks(lo: float, hi: float, factor: float) -> list[float]:
    """At most four round ticks inside [lo, hi] and inside [0, 100%], in display units."""
    from matplotlib.ticker import MaxNLocator

    inner_lo, inner_hi = max(lo, 0.0) * factor, min(hi, 1.0) * factor
    ticks = MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]).tick_values(inner_lo, inner_hi)
    eps = 1e-9 * max(1.0, abs(inner_hi))
    return [float(t) for t in ticks if inner_lo - eps <= t <= inner_hi + eps]


def _tick_label(value: float, ticks: list[float], unit: str) -> str:
    """As few decimals as tell the ticks apart exactly: 97%, 99.5%, 0.25‱."""
    decimals = next((d for d in range(5) if all(abs(round(t, d) - t) < 1e-7 for t in ticks)), 4)
    return f"{value:.{decimals}f}{unit}"


def _month_ticks(months: list[date]) -> list[int]:
    """Positions of the month labels: every month when few, else each January and July."""
    if len(months) <= 6:
        return list(range(len(months)))
    marked = [i for i, m in enumerate(months) if m.month in (1, 7)]
    return marked if len(marked) >= 2 else list(range(0, len(months), max(1, len(months) // 4)))


def series_attributes(series: dict[str, Series]) -> dict[str, str]:
    """Machine-readable attributes of a chart's SVG: ``data-points`` (points drawn per metric,
    ``compliance:13 completeness:13 ...``) and ``data-series`` (JSON: ``months``; per metric the
    rate of each month, null for a gap; ``ylim``: per metric with data, its y-axis in rate units)."""
    months = next(iter(series.values())).months if series else []
    points = " ".join(f"{metric}:{s.count}" for metric, s in series.items())
    payload: dict[str, object] = {"months": [f"{m:%Y-%m}" for m in months]}
    payload |= {metric: [None if v is None else round(v, 6) for _, v in s.points] for metric, s in series.items()}
    payload["ylim"] = {metric: [round(v, 6) for v in y_limits(metric, [v for _, v in s.points], s.target)]
                       for metric, s in series.items() if s.count}
    return {"data-points": points, "data-series": json.dumps(payload, separators=(",", ":"))}


def monthly_svg(kind: str, key: str, series: dict[str, Series], names: dict[str, str]) -> str:
    """One row of small charts for a department or a dataset: one chart per metric, its monthly rate.

    ``kind`` is ``department`` or ``dataset`` and ``key`` its code (they make the SVG's ids unique
    in the page); ``series`` maps each metric to its ``Series`` (credit/report.py), all over the same
    months; ``names`` are the metrics' short Chinese names (report.SHORT_NAMES).

    A month without data is NaN, so the line breaks there (a gap, never a zero); a month that missed
    its target is a red dot; the dashed line is the target. Each chart's y-axis is scaled to its own
    values and target (``y_limits``). The SVG element carries ``series_attributes``.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter

    # A fixed title height: matplotlib need not measure every tick label to place the titles.
    settings = chart_rc(f"{kind}-{key}") | {"font.size": 8, "axes.titley": 1.0, "axes.titlepad": 3.0}
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        if cjk_family() is None:  # said once, in cjk_family's warning; not once per glyph of every label
            warnings.filterwarnings("ignore", message=MISSING_GLYPH, category=UserWarning)
        # Fixed margins, not the constrained layout: the labels are short and of known size, and 27
        # figures laid out twice each would take the report half a minute.
        fig = Figure(figsize=(12.25, 1.8))  # 882 pt: the page's 1180 px
        fig.subplots_adjust(left=0.042, right=0.995, bottom=0.155, top=0.845, wspace=0.34)
        axes = fig.subplots(1, max(1, len(series)))
        axes = list(axes) if len(series) > 1 else [axes]
        for ax, (metric, s) in zip(axes, series.items(), strict=False):
            _small_chart(ax, kind, key, metric, s, names[metric], FixedLocator, FuncFormatter)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = _drop_unused_ids(_inline_svg(buffer.getvalue()), keep=f"trend-{kind}-{key}-")
    attributes = {"class": "trend-chart", "data-kind": kind, "data-key": key, **series_attributes(series)}
    shown = "".join(f' {name}="{html.escape(value, quote=True)}"' for name, value in attributes.items())
    return svg.replace("<svg", "<svg" + shown, 1)


def _small_chart(ax, kind: str, key: str, metric: str, s: Series, name: str, FixedLocator, FuncFormatter) -> None:
    values = [v for _, v in s.points]
    factor, unit = rate_unit(metric, values, s.target)
    n = len(s.points)
    x = list(range(n))
    ys = [math.nan if v is None else v * factor for v in values]
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=7, length=2, pad=1.5)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xticks(_month_ticks([m for m, _ in s.points]))
    ax.set_xticklabels([f"{s.points[i][0]:%Y-%m}" for i in _month_ticks([m for m, _ in s.points])])
    ax.set_title(name, loc="left", fontsize=9, fontweight="bold")
    if all(v is None for v in values):
        ax.set_yticks([])
        ax.text(0.5, 0.45, "无数据", transform=ax.transAxes, ha="center", va="center", color="#999999")
        return
    lo, hi = y_limits(metric, values, s.target)
    ax.set_ylim(lo * factor, hi * factor)
    ticks = _ticks(lo, hi, factor)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_label(v, ticks, unit)))
    ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
    if s.target is not None:
        ax.axhline(s.target * factor, color=TARGET_LINE, linestyle="--", linewidth=0.9, zorder=1)
    (line,) = ax.plot(x, ys, color=LINE, linewidth=1.3, marker="o", markersize=2.6, zorder=2)
    line.set_gid(f"trend-{kind}-{key}-{metric}")
    missed = [(i, y) for i, ((month, _), y) in enumerate(zip(s.points, ys, strict=True)) if month in s.missed]
    if missed:
        ax.plot([i for i, _ in missed], [y for _, y in missed], linestyle="none", marker="o", markersize=3.4,
                color=MISSED, zorder=3)
    month, value = s.points[-1]  # the latest month: its value, or a dash when it has none
    ax.set_title("—" if value is None else f"{value * factor:.2f}{unit}", loc="right", fontsize=9,
                 color="#999999" if value is None else (MISSED if month in s.missed else MET))


def _drop_unused_ids(svg: str, keep: str) -> str:
    """Without matplotlib's ids of every artist (figure_1, axes_1 ...: the same in every chart, so
    repeated in the page); ids something refers to (clip paths, markers) and the lines' ids that
    start with ``keep`` stay."""
    used = set(re.findall(r"#([\w.-]+)", svg))
    return re.sub(r'\s+id="([^"]*)"',
                  lambda m: m.group(0) if m.group(1) in used or m.group(1).startswith(keep) else "", svg)


def _inline_svg(svg: str) -> str:
    """matplotlib's SVG file as an element for an HTML page: no prolog, metadata or namespace URLs."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return re.sub(r'\s+version="1.1"', "", svg, count=1)
