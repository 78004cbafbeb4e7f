"""The credit check report (信用核查报告): one self-contained Chinese HTML page per check, and a PDF of it.

In: a ``CheckResult`` (credit/credit_check.py). Out: ``<out>/<subject>-<variant>-<YYYYMMDD>.html``, written
to a temporary file and renamed; the file name is the subject's USCC when it is one, else a hash (never
text from the query). The page follows the public credit information report (公共信用信息报告标准
（2022年版）): header, 基本信息, 信用评价 (authorized variant only), 信用记录 by dataset, 名单信息, 信用预警,
and the sanction / reward measures for the office asking.

Offline: inline CSS, no script, no font or image from the network, no link; every value from the data
is escaped by Jinja2's autoescape. A page that would still show a valid resident ID is refused
(``credit.report.assert_no_resident_id``).

PDF: headless Chromium (``chromium --headless --print-to-pdf``) when it is on PATH; otherwise ``None``
and the caller says no PDF was written. No PDF library is added.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from credit.credit_check import CITY_TZ, REPAIR_ZH, VARIANT_ZH, CheckResult
from credit.report import TEMPLATES, assert_no_resident_id, write_atomic
from foundation.catalog import Catalog

NUMERALS = "一二三四五六七八九十"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT = 120  # seconds


def render(result: CheckResult, catalog: Catalog, generated: datetime | None = None) -> str:
    """The page's HTML; refused (RestrictedDataError) if it would show a valid resident ID."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True,
                      undefined=StrictUndefined)
    html = env.get_template("credit_check.html.j2").render(
        result=result, numerals=NUMERALS, variant_zh=VARIANT_ZH, repair_zh=REPAIR_ZH,
        severities=dict(catalog.publication.severities),
        departments={code: d.name_zh for code, d in catalog.departments.items()},
        generated=(generated or datetime.now(CITY_TZ)).strftime("%Y-%m-%d %H:%M"))
    assert_no_resident_id(html)
    return html


def file_stem(result: CheckResult) -> str:
    """``<USCC or hash>-<variant>-<YYYYMMDD>``: never the query text itself."""
    if result.subject is not None:
        who = result.subject.file_stem
    else:
        who = "q-" + hashlib.sha256(f"{result.outcome}\x1f{result.query}".encode()).hexdigest()[:16]
    return f"{who}-{result.variant}-{result.check_day:%Y%m%d}"


def write_check_page(result: CheckResult, catalog: Catalog, out_dir: Path) -> Path:
    """Render and write the page into ``out_dir``; returns its path."""
    html = render(result, catalog)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{file_stem(result)}.html"
    write_atomic(path, html)
    return path


def find_chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def write_pdf(html_path: Path, pdf_path: Path | None = None) -> Path | None:
    """Print the page to PDF with headless Chromium; None when Chromium is not on PATH.

    Raises ``RuntimeError`` with Chromium's message when it runs but writes no PDF."""
    binary = find_chromium()
    if binary is None:
        return None
    pdf_path = pdf_path or html_path.with_suffix(".pdf")
    tmp = pdf_path.with_name(f".{pdf_path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tempfile.TemporaryDirectory(prefix="credit-check-chromium-") as profile:
        try:
            done = subprocess.run(
                [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
                 "--no-pdf-header-footer", "--print-to-pdf-no-header", f"--print-to-pdf={tmp}",
                 html_path.resolve().as_uri()],
                capture_output=True, text=True, timeout=PDF_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"Chromium did not finish the PDF within {PDF_TIMEOUT} s") from None
    if done.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"Chromium wrote no PDF (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    os.replace(tmp, pdf_path)
    return pdf_path
