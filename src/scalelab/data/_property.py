"""The property of the data behind a network's seed-to-seed spread, measured.

A network's training loss depends on its first layer's weights W only through W·x for the
training rows x (and the bias), so the action of W on directions outside the affine span
of the training rows is never seen by the loss: nothing in the data fixes it, and whatever
the initialization and the batch order left there (the seed) stays. A scored row's output
depends on the seed through its part in those directions. The measure: the share of a
scored row's squared norm (about the training rows' mean) that lies outside that span,
averaged over the scored rows of the first outer fold. With p ≫ n (64 training rows, 10,000
features) almost every new row lies mostly outside (~1 − n/p for unstructured features);
with rows that share structure (images of two classes) far less does.

Principle for "drives the spread": more than half of a scored row unconstrained (the
majority of its norm is where the seed decides).
"""

from __future__ import annotations

import numpy as np

MAJORITY = 0.5


def unconstrained_share(X_fit: np.ndarray, X_scored: np.ndarray) -> dict:
    """Mean share of each scored row's squared norm about the fit rows' mean that lies outside
    the span of the centred fit rows; with the span's rank, n and p."""
    X_fit = np.asarray(X_fit, dtype=np.float64).reshape(len(X_fit), -1)
    X_scored = np.asarray(X_scored, dtype=np.float64).reshape(len(X_scored), -1)
    mean = X_fit.mean(0)
    D = (X_fit - mean).T                                         # p × n
    U, sv, _ = np.linalg.svd(D, full_matrices=False)
    rank = int((sv > sv.max(initial=0.0) * max(D.shape) * np.finfo(float).eps).sum())
    Q = U[:, :rank]
    V = X_scored - mean
    norm2 = (V ** 2).sum(1)
    inside = ((V @ Q) ** 2).sum(1)
    ok = norm2 > 0
    share = float(np.mean(1 - inside[ok] / norm2[ok])) if ok.any() else float("nan")
    return dict(share=share, rank=rank, n_fit=len(X_fit), p=X_fit.shape[1], n_scored=int(ok.sum()))


def data_property(spec: dict) -> dict | None:
    """The measure on the first outer fold of a stored cross-validated study's spec; None when
    the data cannot be read here (a diagnostic never breaks the summary)."""
    try:
        from .._spec import parse_spec
        from ._folds import make_plan

        st = parse_spec({k: v for k, v in spec.items()})
        plan = make_plan(st.data, st.cv)
        X, _ = plan.rows(0)
        fit, scored = plan.indices(0, 0, None)
        return unconstrained_share(X[fit], X[scored])
    except Exception:
        return None
