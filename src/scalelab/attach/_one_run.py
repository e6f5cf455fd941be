"""What a single run records for the rules that need only one run (:mod:`scalelab._explain`'s
``loss-at-chance``, ``loss-at-mean``, ``accuracy-at-majority``, ``dead-units``,
``saturated-units-single``, ``gradient-flow``): absolute references from the labels
(the chance loss, the majority share, the targets' variance) and the state of the user's
own units and gradients. Plain numpy in, ``(quantity, value)`` rows out, stored under the
probe name :data:`PROBE` like any probe's records."""

from __future__ import annotations

import math

import numpy as np

from ._checks import squeeze_targets
from ._model import CLASS_LOSSES, REGRESSION_LOSSES, ModelDesc

PROBE = "attach"
# a saturated activation: its derivative is under 5% of its maximum (tanh: |z| > 2.18,
# sigmoid: |z| > 4.36), so it passes back under a twentieth of the gradient it could
SATURATION_Z = {"tanh": 2.18, "sigmoid": 4.36}


def class_indices(y: np.ndarray) -> np.ndarray:
    y2 = squeeze_targets(np.asarray(y))
    if y2.ndim == 2 and y2.shape[1] > 1:
        return y2.argmax(1)
    return y2.reshape(-1)


def label_references(d: ModelDesc, y: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    """The loss of a model that ignores its inputs: for classes, the entropy of the label
    frequencies (log C when balanced) and the majority share; for regression, the targets'
    variance (MSE of predicting the mean) and mean absolute deviation (MAE of predicting the median).

    With sample weights ``w`` (Keras turns ``class_weight`` into them) the reported loss is
    (1/n) Σ w_i loss_i; the best constant prediction then puts q_c ∝ W_c (the weight of class
    c), scoring -(1/n) Σ_c W_c log(W_c / W): that is the chance level compared with."""
    out: dict[str, float] = {}
    y = np.asarray(y)
    if d.loss in (*CLASS_LOSSES, "binary_crossentropy") and y.size:
        if d.loss == "binary_crossentropy" and squeeze_targets(y).ndim == 2:   # multi-label: per label
            p = np.clip(squeeze_targets(y).astype(np.float64).mean(0), 1e-12, 1 - 1e-12)
            out["label_entropy"] = float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
            out["n_classes"] = 2.0
            return out
        idx = class_indices(y)
        if d.loss == "binary_crossentropy":
            idx = (idx.astype(np.float64) > 0.5).astype(np.int64)
        idx = idx[np.isfinite(idx.astype(np.float64))].astype(np.int64)
        classes, counts = np.unique(idx, return_counts=True)
        p = counts / counts.sum()
        units = d.output_units or 0
        C = max(len(counts), units if units > 1 else 2)
        H = float(-(p * np.log(p)).sum())
        if w is not None and len(w) == len(idx):
            W = np.array([w[idx == c].sum() for c in classes], dtype=np.float64)
            W = W[W > 0]
            H = float(-(W * np.log(W / W.sum())).sum() / len(idx))
        out.update(label_entropy=H, log_classes=math.log(C), n_classes=float(C),
                   majority_share=float(p.max()), majority_class=float(classes[int(np.argmax(counts))]))
    elif (d.loss in REGRESSION_LOSSES or d.loss.startswith("custom")) and y.size and np.issubdtype(y.dtype, np.number):
        t = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        t = t[np.isfinite(t).all(1)]
        if len(t):
            out.update(target_var=float(t.var(0).mean()), target_mad=float(np.abs(t - np.median(t, 0)).mean()))
    return out


def labels_sorted(batches: list[np.ndarray]) -> bool:
    """The epoch's labels in the order training saw them are sorted (non-decreasing or
    non-increasing) and hold several classes, over at least 3 batches. A shuffled order of
    n labels with class counts n_1..n_k is sorted with probability 2·∏ n_c! / n! (48 rows of
    two balanced classes: 2 / C(48, 24) ≈ 6e-14): sorted means not shuffled."""
    if len(batches) < 3:
        return False
    seq = np.concatenate([class_indices(b).astype(np.float64) for b in batches])
    if len(np.unique(seq)) < 2:
        return False
    d = np.diff(seq)
    return bool((d >= 0).all() or (d <= 0).all())


def unit_states(taps: dict, layers: list[tuple[int, str, str]]) -> dict[str, float]:
    """Dead share (ReLU units zero on every row) and saturated share (the share of a tanh/sigmoid
    layer's activations, over rows and units, past :data:`SATURATION_Z`) of each hidden layer, from the taps
    ``pre{i}``/``act{i}`` of one forward pass; ``layers``: (index, name, activation)."""
    out = {}
    for i, _name, act in layers:
        a, z = taps.get(f"act{i}"), taps.get(f"pre{i}")
        if act in ("relu", "relu6", "elu", "selu", "gelu", "silu") and a is not None:
            a = np.asarray(a)[0] if np.ndim(a) == 3 else np.asarray(a)
            if act in ("relu", "relu6"):
                out[f"act{i}.dead_frac"] = float(np.mean(np.all(a <= 0, axis=0)))
        if act in SATURATION_Z and z is not None:
            z = np.asarray(z)[0] if np.ndim(z) == 3 else np.asarray(z)
            out[f"pre{i}.saturated_frac"] = float(np.mean(np.abs(z) > SATURATION_Z[act]))
    return out


def predictions(d: ModelDesc, out: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The trained model on the probe rows: the share of its most predicted class and its accuracy."""
    o = np.asarray(out, dtype=np.float64)
    o = o.reshape(len(o), -1)
    if d.loss not in (*CLASS_LOSSES, "binary_crossentropy") or not len(o):
        return {}
    if o.shape[1] == 1:
        thr = 0.0 if d.from_logits or d.output_activation == "linear" else 0.5
        pred = (o[:, 0] > thr).astype(np.int64)
        truth = (class_indices(y).astype(np.float64) > 0.5).astype(np.int64)
    elif d.loss == "binary_crossentropy":   # multi-label: no single predicted class
        return {}
    else:
        pred, truth = o.argmax(1), class_indices(y).astype(np.int64)
    _, counts = np.unique(pred, return_counts=True)
    return {"pred_majority_share": float(counts.max() / len(pred)),
            "probe_accuracy": float(np.mean(pred == truth[:len(pred)]))}
