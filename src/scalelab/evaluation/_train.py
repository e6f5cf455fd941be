"""Fitting one split: the network's seeds as one stacked group on the engine (with early
stopping on the monitor rows when asked), or a scikit-learn estimator, each returning the
scored rows' class probabilities so that ensembles and selection need no refit."""

from __future__ import annotations

import time

import numpy as np
import torch

from .._runtime import flush_denormals


def _acc(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(-1) == y)) if len(y) else float("nan")


def _logloss(probs: np.ndarray, y: np.ndarray) -> float:
    if not len(y):
        return float("nan")
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


@torch.no_grad()
def _probs(g, params, X) -> np.ndarray:
    """Class probabilities (M, n, K) of every model on rows X of the group's device data, a
    chunk of rows at a time as :meth:`StackedGroup.evaluate` reads them (~2^18 input values
    per model): all rows at once gathered M × n × p inputs (20 × 5,000 × 10,000 float32 = 4 GB
    for a file's test set of 5,000 rows). The chunk depends on the data only, so a set that fits
    one chunk gives the numbers it gave before."""
    if len(X) == 0:
        return np.zeros((g.M, 0, 2))
    n = len(X)
    chunk = max(1, min(n, (1 << 18) // max(1, X.shape[1])))
    parts, buf = [], {}
    for i in range(0, n, chunk):
        idx = torch.arange(i, min(n, i + chunk), device=g.device).expand(g.M, -1)
        parts.append(torch.softmax(g.forward(params, g.inputs(X, idx, buf)).double(), -1).cpu().numpy())
    return np.concatenate(parts, 1)


def train_network(trials: list, data_dir: str | None = None, device: str | None = None,
                  curves: bool = True) -> list[dict]:
    """Train the trials (one split, one seed each, same shapes) as one stacked group.

    Returns per trial: ``probs`` (scored rows × classes), ``acc``, ``loss`` on the scored
    rows, ``epochs`` (per-epoch train loss/acc and, with ``curves``, the scored rows'
    loss/acc), ``best_epoch`` (early stopping) and ``wall_s``. With ``cv.early_stopping``
    each model keeps the weights of its epoch with the lowest loss on the monitor rows
    (Keras's EarlyStopping(restore_best_weights=True)); training stops once no model has
    improved for ``cv.patience`` epochs."""
    from ..engine import StackedGroup

    s = trials[0].spec
    with flush_denormals(s.train.flush_denormals):
        t0 = time.perf_counter()
        g = StackedGroup(trials, data_dir, device)
        M, es = g.M, s.cv.early_stopping
        y_val = g.y_val.cpu().numpy()
        history: list[list[dict]] = [[] for _ in range(M)]
        best = {k: v.detach().clone() for k, v in g.params.items()} if es else None
        best_loss = torch.full((M,), float("inf"), dtype=torch.float64, device=g.device)
        best_epoch = np.zeros(M, dtype=int)
        since = torch.zeros(M, dtype=torch.int64, device=g.device)
        for epoch in range(1, g.epochs + 1):
            perm = g.permutations()
            loss_sum = torch.zeros(M, dtype=torch.float64, device=g.device)
            correct = torch.zeros(M, dtype=torch.float64, device=g.device)
            for k in range(g.steps_per_epoch):
                idx = perm[:, k * g.batch_size: (k + 1) * g.batch_size]
                loss, out, y = g.train_step(idx)
                loss_sum += loss.double() * idx.shape[1]
                correct += (out.argmax(-1) == y).sum(1).double()
            rec = [dict(epoch=epoch, train_loss=float(a), train_acc=float(b)) for a, b in
                   zip((loss_sum / g.n_train).cpu().numpy(), (correct / g.n_train).cpu().numpy())]
            if curves:
                ev = g.evaluate(g.X_val, g.y_val)
                for m in range(M):
                    rec[m].update(val_loss=float(ev["loss"][m]), val_acc=float(ev["acc"][m]))
            for m in range(M):
                history[m].append(rec[m])
            if es:
                mon = torch.as_tensor(g.evaluate(g.X_test, g.y_test)["loss"], device=g.device)
                better = mon < best_loss
                best_loss = torch.where(better, mon, best_loss)
                since = torch.where(better, torch.zeros_like(since), since + 1)
                for k, v in g.params.items():
                    best[k] = torch.where(better.view(-1, *([1] * (v.dim() - 1))), v.detach(), best[k])
                best_epoch[better.cpu().numpy()] = epoch
                if bool((since >= s.cv.patience).all()):
                    break
        probs = _probs(g, best if es else g.params, g.X_val)
        wall = time.perf_counter() - t0
    out = []
    for m in range(M):
        out.append(dict(probs=probs[m], acc=_acc(probs[m], y_val), loss=_logloss(probs[m], y_val),
                        epochs=history[m], best_epoch=int(best_epoch[m]) if es else None, wall_s=wall / M))
    return out


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
    return dict(probs=probs, acc=_acc(probs, sp.y_val), loss=_logloss(probs, sp.y_val),
                epochs=[dict(epoch=1, train_loss=float("nan"), train_acc=acc_tr)], best_epoch=None,
                wall_s=time.perf_counter() - t0)
