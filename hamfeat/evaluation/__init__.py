"""Evaluation: compute, never render.

``splits`` (lesion- and patient-grouped folds), ``oof`` (out-of-fold predictions), ``metrics``
(accuracy, balanced accuracy, AUC, the decision-rule curve), ``results`` (the typed results a
CV run returns; no computation), ``cv`` (the multi-class cross-validation), ``multilabel`` (the
ChestX-ray14 one), ``ablations`` and ``targets``. Markdown, JSON and plots are rendered from
``results`` by :mod:`hamfeat.render`.
"""
