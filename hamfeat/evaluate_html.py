"""``hamfeat evaluate --html``: the evaluation as one self-contained page, ``report.html``.

Joins the computation (:func:`hamfeat.evaluate_page.page_data`) and the rendering
(:func:`hamfeat.render.evaluate_page.write_evaluate_page`), so that neither imports the other,
as :mod:`hamfeat.cv_html` does for ``hamfeat cv --html``.
"""

from __future__ import annotations

import os
from pathlib import Path

from hamfeat._io import check_output_dir
from hamfeat.cv_html import PAGE_NAME
from hamfeat.evaluate_external import Evaluation
from hamfeat.evaluate_page import page_data
from hamfeat.render.evaluate_page import write_evaluate_page

__all__ = ["PAGE_NAME", "write_evaluate_html"]


def write_evaluate_html(
    ev: Evaluation,
    report_dir: str | os.PathLike[str],
    *,
    title: str | None = None,
    **kwargs,
) -> Path:
    """Write ``report_dir/report.html``.

    Parameters
    ----------
    ev : Evaluation
        From :func:`hamfeat.evaluate_external.evaluate_images` (it holds the scoring's model
        and feature configuration: the trade-off and the gallery's images need them).
    report_dir : path-like
        The report folder (created if needed).
    title : str, optional
    **kwargs
        ``per_class`` of :func:`hamfeat.evaluate_page.page_data`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        When the page cannot be written.
    """
    folder = check_output_dir(report_dir)
    return write_evaluate_page(page_data(ev, **kwargs), folder / PAGE_NAME, title=title)
