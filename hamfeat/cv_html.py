"""``hamfeat cv --html``: the CV run as one self-contained page, ``report.html``.

Joins the computation (:func:`hamfeat.cv_page.page_data`) and the rendering
(:func:`hamfeat.render.cv_page.write_cv_page`), so that neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from hamfeat.cv_page import page_data
from hamfeat.render.cv_page import write_cv_page

__all__ = ["PAGE_NAME", "write_cv_html"]

#: The page's file name in the report folder.
PAGE_NAME = "report.html"


def write_cv_html(
    report: dict,
    oof: pd.DataFrame,
    table: pd.DataFrame,
    report_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    oof_file: str = "cv_oof.parquet",
    table_path: str | os.PathLike[str] | None = None,
    **kwargs,
) -> Path:
    """Write ``report_dir/report.html``.

    Parameters
    ----------
    report : dict
        :func:`hamfeat.evaluation.cv.run_cv`'s report (its PNGs already in ``report_dir``).
    oof : pandas.DataFrame
        The best model's out-of-fold table (:func:`hamfeat.cv_page.oof_frame`).
    table : pandas.DataFrame
        The CV's feature table.
    report_dir : path-like
    data_dir : path-like, optional
        The HAM10000 folder for the galleries' images and reference masks.
    oof_file : str
        The out-of-fold table's file name, as the page names it.
    table_path : path-like, optional
        Where the table was read from (a learned segmenter is looked for beside it).
    **kwargs
        ``per_class``, ``budget`` of :func:`hamfeat.cv_page.page_data`.

    Returns
    -------
    pathlib.Path
    """
    data = page_data(
        report, oof, table, report_dir=report_dir, data_dir=data_dir, oof_file=oof_file,
        table_path=table_path, **kwargs,
    )
    return write_cv_page(data, Path(report_dir) / PAGE_NAME)
