"""Renderers of computed results for people: HTML pages (Jinja2 templates) and terminal text.

Nothing here computes a result; it is given explanations and score tables
(:mod:`hamfeat.explain`, :mod:`hamfeat.score`) and turns them into pages. The HTML machinery
(one Jinja2 environment with auto-escaping, a base template, data-URI image embedding,
matplotlib figures as embedded PNGs, an atomic page writer) lives in :mod:`hamfeat.render.html`
so that other pages (the CV / evaluation report) reuse it.
"""

from hamfeat.render.html import (
    environment,
    figure_data_uri,
    image_data_uri,
    outlined_thumbnail,
    write_page,
)
from hamfeat.render.score_page import render_score_page, write_score_page
from hamfeat.render.text import explanation_text

__all__ = [
    "environment",
    "explanation_text",
    "figure_data_uri",
    "image_data_uri",
    "outlined_thumbnail",
    "render_score_page",
    "write_page",
    "write_score_page",
]
