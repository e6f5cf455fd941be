"""A scikit-learn estimator arm of a cross-validated study fitted on one split (not a network:
a plain fit, no steps; the networks train on the engine, _cv_fit.py), returning the scored
rows' class probabilities so that selection needs no refit; and the two scores of
probabilities every arm shares."""

from __future__ import annotations

import time

import numpy as np


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(-1) == y)) if len(y) else float("nan")


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    if not len(y):
        return float("nan")
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


def _input_map(spec, X_fit):
    """The spec's input transform fitted on the fitted rows (the engine does the same)."""
    tf = spec.input.make_transform()
    tf.fit(X_fit[:1] if spec.input.transform in ("none", "scale") else X_fit)
    return lambda X: np.asarray(X, np.float64) * tf.scale_ + tf.offset_


def fit_estimator(trial, data_dir: str | None = None) -> dict:
    """A scikit-learn baseline on the trial's split (the same rows, input transform and PCA
    as the network): RBF SVM (probabilities from Platt scaling would need an inner split, so
    the decision's sign gives the class and the probabilities are one-hot), L2 or L1 logistic
    regression (probabilities from the model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from ..data import trial_split

    t0 = time.perf_counter()
    s = trial.spec
    _, sp = trial_split(s, data_dir)
    tf = _input_map(s, sp.X_train)
    Xf, Xs = tf(sp.X_train), tf(sp.X_val)
    kind, C = s.cv.estimator, float(s.cv.C)
    if kind == "svm-rbf":
        est = SVC(kernel="rbf", C=C, gamma="scale").fit(Xf, sp.y_train)
        pred = est.predict(Xs)
        probs = np.eye(sp.n_classes)[pred] if len(Xs) else np.zeros((0, sp.n_classes))
    else:
        est = LogisticRegression(C=C, l1_ratio=1.0 if kind == "logreg-l1" else 0.0, random_state=0,
                                 solver="liblinear" if kind == "logreg-l1" else "lbfgs", max_iter=2000)
        est.fit(Xf, sp.y_train)
        probs = est.predict_proba(Xs) if len(Xs) else np.zeros((0, sp.n_classes))
    acc_tr = float(est.score(Xf, sp.y_train))
    return dict(probs=probs, acc=accuracy(probs, sp.y_val), loss=log_loss(probs, sp.y_val),
                epochs=[dict(epoch=1, train_loss=float("nan"), train_acc=acc_tr)], best_epoch=None,
                wall_s=time.perf_counter() - t0)
