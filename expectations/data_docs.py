"""Data Docs views that keep the pages inside the credit center.

GX's page templates show a logo fetched from a remote server with the data context id in
its URL, and a newsletter footer. These views put ``expectations/templates/`` in front of
GX's own templates (GX's ``custom_data_docs/views`` folder can only add templates, not
replace them); ``run.get_context`` names them in the Data Docs site configuration.

The pages also load their styles and scripts from public CDNs. ``make_offline`` copies the
same files (``expectations/static/vendor/``, see its README) into the site and points every
page at them, so Data Docs work on an offline machine and open no outside connection.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _local_first(view) -> None:
    view.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), view.env.loader])


class LocalPageView(DefaultJinjaPageView):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _local_first(self)


class LocalIndexPageView(DefaultJinjaIndexPageView):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _local_first(self)


SITE_VIEWS: dict[str, dict[str, Any]] = {
    "site_index_builder": {"view": {"module_name": __name__, "class_name": "LocalIndexPageView"}},
    "site_section_builders": {
        section: {"view": {"module_name": __name__, "class_name": "LocalPageView"}}
        for section in ("expectations", "validations", "profiling")
    },
}


VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
# The CDN addresses in GX 1.24.1's templates -> the local copy under <site>/static/vendor/.
LOCAL_ASSETS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
}
# Tags dropped: charts of expectations the catalog's suites do not use, and dark mode.
_DROPPED = re.compile(
    r'<script src="https://cdn\.jsdelivr\.net/npm/vega(?:-lite|-embed)?@\d+"></script>\s*'
    r'|<link rel="stylesheet" href="https://cdn\.jsdelivr\.net/npm/@forevolve/[^"]*" />\s*'
)
_REMOTE_LOGO = re.compile(r"url\('https://great-expectations-web-assets\.s3\.[^']*'\)")
# What a page would fetch from outside by itself (a plain <a href> link is not fetched).
REMOTE_REFERENCE = re.compile(
    r"""<(?:script|img|iframe|source)\b[^>]*\ssrc\s*=\s*["']https?://"""
    r"""|<link\b[^>]*\shref\s*=\s*["']https?://|url\(\s*['"]?https?://""",
    re.IGNORECASE,
)


def make_offline(site: Path) -> None:
    """Point every page of the Data Docs site ``site`` at local copies of its CDN assets."""
    shutil.copytree(VENDOR, site / "static" / "vendor", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("README.md", "LICENSE.*"))
    for page in [*site.rglob("*.html"), *site.rglob("*.css")]:
        if "vendor" in page.relative_to(site).parts:
            continue
        text = original = page.read_text(encoding="utf-8")
        prefix = "../" * (len(page.relative_to(site).parts) - 1) + "static/vendor/"
        text = _DROPPED.sub("", text)
        for remote, local in LOCAL_ASSETS.items():
            text = text.replace(remote, prefix + local)
        text = _REMOTE_LOGO.sub("none", text)
        if text != original:
            page.write_text(text, encoding="utf-8")
