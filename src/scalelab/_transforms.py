"""Input and target transforms, scikit-learn style.

Hyperparameters live in ``__init__``; ``fit`` learns state (attributes ending in ``_``)
from training data only and returns ``self``. Every transform here is affine per
feature, ``transform(X) = X * scale_ + offset_``, which is what lets the engine keep
images as uint8 and apply each model's own transform inside the training step.
"""

from __future__ import annotations

import numpy as np


class AffineTransform:
    """Base class: subclasses set ``scale_`` and ``offset_`` of shape (n_features,) in ``_fit``."""

    name = "affine"

    def fit(self, X: np.ndarray) -> "AffineTransform":
        """Learn the transform from X of shape (n_samples, n_features)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        self.n_features_in_ = X.shape[1]
        scale, offset = self._fit(X)
        self.scale_ = np.broadcast_to(np.asarray(scale, np.float64), (X.shape[1],)).copy()
        self.offset_ = np.broadcast_to(np.asarray(offset, np.float64), (X.shape[1],)).copy()
        return self

    def _fit(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, X):
        if not hasattr(self, "scale_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X) first")
        X = np.asarray(X, dtype=np.float64)
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        """X of shape (n_samples, n_features) → transformed array of the same shape."""
        return self._check(X) * self.scale_ + self.offset_

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Undo ``transform``: Z of shape (n_samples, n_features) → original units."""
        return (self._check(Z) - self.offset_) / self.scale_

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Identity(AffineTransform):
    """No change."""

    name = "none"

    def _fit(self, X):
        return 1.0, 0.0


class Scale(AffineTransform):
    """Multiply every feature by a fixed ``factor`` (e.g. 1/255)."""

    name = "scale"

    def __init__(self, factor: float = 1.0):
        self.factor = factor

    def _fit(self, X):
        if not np.isfinite(self.factor) or self.factor == 0:
            raise ValueError(f"scale factor must be finite and non-zero, got {self.factor}")
        return float(self.factor), 0.0


class Standardize(AffineTransform):
    """Zero mean, unit variance: per feature, or with one mean and std over all values.

    A constant feature keeps scale 1 (it becomes all zeros), as in scikit-learn.
    """

    name = "standardize"

    def __init__(self, per_feature: bool = True):
        self.per_feature = per_feature

    def _fit(self, X):
        mean = X.mean(axis=0) if self.per_feature else X.mean()
        std = X.std(axis=0) if self.per_feature else X.std()
        std = np.where(std > 0, std, 1.0)
        return 1.0 / std, -mean / std


class MinMax(AffineTransform):
    """Map each feature's training range onto ``feature_range`` (per feature or global)."""

    name = "minmax"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), per_feature: bool = True):
        self.feature_range = tuple(feature_range)
        self.per_feature = per_feature

    def _fit(self, X):
        lo, hi = self.feature_range
        if not hi > lo:
            raise ValueError(f"feature_range must be increasing, got {self.feature_range}")
        xmin = X.min(axis=0) if self.per_feature else X.min()
        xmax = X.max(axis=0) if self.per_feature else X.max()
        span = np.where(xmax > xmin, xmax - xmin, 1.0)
        scale = (hi - lo) / span
        return scale, lo - xmin * scale


TRANSFORMS = {cls.name: cls for cls in (Identity, Scale, Standardize, MinMax)}


def make_transform(name: str, **params) -> AffineTransform:
    """Build a registered transform by name (``none``, ``scale``, ``standardize``, ``minmax``)."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}")
    return TRANSFORMS[name](**params)
