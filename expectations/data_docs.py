"""Data Docs views that keep the pages inside the credit center.

GX's page templates show a logo fetched from a remote server with the data context id in
its URL, and a newsletter footer. These views put ``expectations/templates/`` in front of
GX's own templates (GX's ``custom_data_docs/views`` folder can only add templates, not
replace them); ``run.get_context`` names them in the Data Docs site configuration.
"""

from __future__ import annotations

from pathlib import Path

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


SITE_VIEWS = {
    "site_index_builder": {"view": {"module_name": __name__, "class_name": "LocalIndexPageView"}},
    "site_section_builders": {
        section: {"view": {"module_name": __name__, "class_name": "LocalPageView"}}
        for section in ("expectations", "validations", "profiling")
    },
}
