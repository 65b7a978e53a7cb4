"""``hamfeat score DIR --html OUT``: a scored folder as one self-contained page.

Joins the computation (:func:`hamfeat.explain.explain_scored`) and the rendering
(:func:`hamfeat.render.write_score_page`), so that neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path

from hamfeat.explain import explain_scored
from hamfeat.render import write_score_page

__all__ = ["write_score_html"]


def write_score_html(
    result,
    path: str | os.PathLike[str],
    *,
    per_feature: bool = True,
    top: int = 5,
    title: str | None = None,
) -> Path:
    """Write the page of a :class:`hamfeat.score.ScoreResult`.

    Parameters
    ----------
    result : hamfeat.score.ScoreResult
        From :func:`hamfeat.score.score_folder` (single-label model).
    path : path-like
        The page to write (atomically).
    per_feature : bool
        Per-feature effects (``2 + n_features + n_families`` predictions per image), or only
        the family view (``2 + n_families``).
    top : int
        Features listed per image.
    title : str, optional

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        When the page cannot be written.
    """
    from hamfeat.errors import ModelError

    model = result.model
    if model is None or model.extra.get("task") == "multilabel":
        raise ModelError(
            result.model_path or "model", "--html needs a HAM10000 (multi-class) model"
        )
    return write_score_page(
        explain_scored(result, top=top, per_feature=per_feature),
        path,
        table=result.images(),
        model_path=result.model_path or "",
        model_name=str(model.extra.get("model", "")) if model is not None else "",
        title=title,
        problems=result.problems,
        per_feature=per_feature,
        has_stats=bool(model is not None and model.training_stats),
    )
