"""Token data: a deterministic text-classification generator and users' token-id files.

Token ids are integers in 0..V-1 with 0 the padding id ("no token"); they stay int64 from
here to the embedding lookup (the engine never scales or casts them).

``text`` (seed 003, "large trainable embedding layer slows down training"): sequences of
Zipf-distributed word ids over a vocabulary of V (word of rank r has probability ∝ 1/r^1.1,
so a large V adds a long tail of rare words, as in real text), with two planted marker
tokens A = 1 and B = 2 that the background never draws. The label depends on them:

* ``rule = "order"``: every sequence holds A and B once each; the label is 1 when A comes
  before B. Both markers are always present, so a bag of words (any function of the token
  counts) is at chance; a sequence model (LSTM) can learn it.
* ``rule = "presence"``: every sequence holds exactly one marker; the label is 1 for A. A
  bag of words learns it.

``lengths = "variable"`` draws each sequence's length uniformly in [T/2, T] and pads at the
front with 0 (Keras's ``pad_sequences`` default), so an LSTM's last step is the last word.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._dataset import DataError, Dataset, _as_target

PAD = 0
MARK_A, MARK_B = 1, 2
FIRST_WORD = 3          # background words are ids 3..V-1, most frequent first
ZIPF_EXPONENT = 1.1


def make_text(n_train: int = 2000, n_test: int = 500, seed: int = 0, vocab: int = 20000, steps: int = 50,
              rule: str = "order", lengths: str = "fixed") -> Dataset:
    """Token ids (n, steps) int64 and binary labels (see the module's doc)."""
    if vocab < FIRST_WORD + 1:
        raise DataError(f"data.vocab = {vocab}: the text generator needs at least {FIRST_WORD + 1} ids "
                        f"(padding, two markers, one word)")
    if steps < 2:
        raise DataError(f"data.seq_len = {steps}: a sequence needs room for the two marker tokens")
    rng = np.random.default_rng([seed, 5])
    ranks = np.arange(1, vocab - FIRST_WORD + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -ZIPF_EXPONENT)
    cdf /= cdf[-1]

    def draw(n):
        X = FIRST_WORD + np.searchsorted(cdf, rng.random((n, steps)), side="right")
        X = np.minimum(X, vocab - 1).astype(np.int64)
        lens = (rng.integers(max(2, steps // 2), steps + 1, size=n) if lengths == "variable"
                else np.full(n, steps))
        y = rng.integers(0, 2, size=n)
        for i in range(n):
            start = steps - lens[i]                      # front padding
            X[i, :start] = PAD
            if rule == "order":
                a, b = start + rng.choice(lens[i], size=2, replace=False)
                first, second = (a, b) if a < b else (b, a)
                X[i, first], X[i, second] = (MARK_A, MARK_B) if y[i] else (MARK_B, MARK_A)
            else:
                X[i, start + rng.integers(lens[i])] = MARK_A if y[i] else MARK_B
        return X, y.astype(np.int64)

    Xtr, ytr = draw(n_train)
    Xte, yte = draw(n_test)
    return Dataset("text", Xtr, ytr, Xte, yte, "classification", 2,
                   meta=dict(vocab=vocab, steps=steps, padding=PAD, rule=rule, lengths=lengths))


def check_tokens(X: np.ndarray, vocab: int, source: str, padding: int = PAD) -> np.ndarray:
    """Token ids (n, T) as int64, or a DataError naming the first bad id or row and the fix."""
    X = np.asarray(X)
    if X.dtype.kind not in "iu":
        raise DataError(f"{source}: token ids must be an integer array, got {X.dtype}; convert with "
                        f"X.astype(np.int64) (ids, not embeddings)")
    if X.ndim != 2:
        raise DataError(f"{source}: token ids need shape (n_samples, seq_len), got {X.shape}")
    if X.size and (X.min() < 0 or X.max() >= vocab):
        bad = np.argwhere((X < 0) | (X >= vocab))[0]
        v = int(X[tuple(bad)])
        fix = (f"set data.vocab to at least {v + 1} or map rare words to one out-of-vocabulary id" if v >= vocab
               else "ids are 0..V-1 with 0 the padding id")
        raise DataError(f"{source}: token id {v} at row {bad[0]}, position {bad[1]} is outside the vocabulary "
                        f"0..{vocab - 1}; {fix}")
    real = X != padding
    n_real = real.sum(1)
    if (n_real == 0).any():
        row = int(np.argmax(n_real == 0))
        raise DataError(f"{source}: row {row} holds only padding (id {padding}); drop empty sequences")
    first = real.argmax(1)
    last = X.shape[1] - 1 - real[:, ::-1].argmax(1)
    gap = n_real != last - first + 1
    if gap.any():
        row = int(np.argmax(gap))
        pos = int(first[row] + np.argmax(~real[row, first[row]:]))
        raise DataError(f"{source}: row {row} has the padding id {padding} at position {pos} between tokens; pad "
                        f"only at the start (pad_sequences' default) or the end, and shift real ids so none is "
                        f"{padding}")
    return X.astype(np.int64, copy=False)


def load_tokens(path: str | os.PathLike, vocab: int, test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Users' token data: an ``.npz`` with ``X`` int (n, T) token ids (0 = padding) and ``y``
    class labels, optionally ``X_test``, ``y_test``; every id is checked against ``vocab``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist; check data.path")
    if path.suffix != ".npz":
        raise DataError(f"{path}: token data (data.vocab set) must be an .npz with X (n, seq_len) int ids and y")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("X", "y") if k not in z.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)}; token data needs X (n_samples, seq_len) "
                            f"int ids and y (n_samples,) labels")
        arr = {k: np.asarray(z[k]) for k in ("X", "y", "X_test", "y_test") if k in z.files}
    X = check_tokens(arr["X"], vocab, f"{path}: X")
    y, _, n_classes = _as_target(arr["y"], "classification", str(path))
    if len(X) != len(y):
        raise DataError(f"{path}: X has {len(X)} rows but y has {len(y)}")
    if "X_test" in arr and "y_test" in arr:
        Xte = check_tokens(arr["X_test"], vocab, f"{path}: X_test")
        if Xte.shape[1] != X.shape[1]:
            raise DataError(f"{path}: X_test has sequences of {Xte.shape[1]} ids but X of {X.shape[1]}; pad both to "
                            f"the same length")
        yte, _, nc = _as_target(arr["y_test"], "classification", str(path))
        if len(Xte) != len(yte):
            raise DataError(f"{path}: X_test has {len(Xte)} rows but y_test has {len(yte)}")
        Xtr, ytr, n_classes = X, y, max(n_classes, nc)
    else:
        from sklearn.model_selection import train_test_split

        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    return Dataset(path.stem, Xtr, ytr, Xte, yte, "classification", n_classes,
                   meta=dict(vocab=vocab, steps=X.shape[1], padding=PAD, path=str(path)))


def check_token_model(spec, ds: Dataset) -> None:
    """A token model needs token data and the reverse; ids are never transformed: one
    actionable ValueError."""
    layers = spec.model.layers if spec.model.kind == "layers" else []
    kinds = [entry.get("kind") for entry in layers]
    tokens = "vocab" in ds.meta
    if "embedding" in kinds[1:]:
        raise ValueError("model.layers: the embedding layer reads token ids, so it must come first")
    if tokens and kinds[:1] != ["embedding"]:
        raise ValueError(f"data set {ds.name!r} holds token ids; start model.layers with "
                         f"{{kind = \"embedding\", vocab = {ds.meta['vocab']}, dim = ...}}")
    if not tokens and kinds[:1] == ["embedding"]:
        raise ValueError(f"an embedding layer needs token ids; data set {ds.name!r} has none (use dataset = 'text' "
                         f"or a token file with data.vocab)")
    if tokens:
        if spec.input.transform != "none" or spec.input.features:
            raise ValueError("input.transform and input.features apply to numeric features; token ids stay exact: "
                             "set input.transform = 'none' and no features")
        vocab = layers[0].get("vocab")
        if isinstance(vocab, int) and vocab < ds.meta["vocab"]:
            raise ValueError(f"model.layers[0].vocab = {vocab} is smaller than the data's vocabulary "
                             f"({ds.meta['vocab']}); set it to at least {ds.meta['vocab']}")


def load(data, data_dir, trajectory) -> Dataset:
    kw = {"n_train": data.n_samples} if data.n_samples else {}
    return make_text(seed=data.split_seed, vocab=data.vocab or 20000, steps=data.seq_len, rule=data.text_rule,
                     lengths=data.text_lengths, **kw)
