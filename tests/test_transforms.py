"""Shared checks over every registered transform, plus scikit-learn as the oracle."""

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from scalelab import TRANSFORMS, make_transform

PARAMS = {"none": {}, "scale": {"factor": 1 / 255}, "standardize": {}, "minmax": {}}


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * [1, 10, 1e-3, 4e3, 1] + [0, 5, 0, -100, 7]
    X[:, 4] = 7.0  # a constant column
    return X


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_registered_transform_contract(name, X):
    tf = make_transform(name, **PARAMS[name])
    assert tf.fit(X) is tf
    Z = tf.transform(X)
    assert Z.shape == X.shape and np.isfinite(Z).all()  # constant columns do not divide by zero
    np.testing.assert_allclose(tf.inverse_transform(Z), X, rtol=1e-12, atol=1e-9)  # round trip
    learned = {k: v.copy() for k, v in vars(tf).items() if k.endswith("_") and isinstance(v, np.ndarray)}
    tf.fit(X)  # refit on the same data: the same state
    for k, v in learned.items():
        np.testing.assert_array_equal(getattr(tf, k), v)
    # affine contract the engine relies on
    np.testing.assert_allclose(Z, X * tf.scale_ + tf.offset_)
    with pytest.raises(RuntimeError, match="not fitted"):
        make_transform(name, **PARAMS[name]).transform(X)


def test_standardize_matches_sklearn(X):
    ours = make_transform("standardize").fit(X[:150])
    ref = StandardScaler().fit(X[:150])
    np.testing.assert_allclose(ours.transform(X[150:]), ref.transform(X[150:]), rtol=1e-10, atol=1e-12)


def test_minmax_matches_sklearn(X):
    ours = make_transform("minmax", feature_range=(-1, 1)).fit(X[:150])
    ref = MinMaxScaler(feature_range=(-1, 1)).fit(X[:150])
    np.testing.assert_allclose(ours.transform(X[150:]), ref.transform(X[150:]), rtol=1e-10, atol=1e-12)


def test_global_standardize_uses_one_mean_and_std(X):
    tf = make_transform("standardize", per_feature=False).fit(X)
    np.testing.assert_allclose(tf.scale_, 1 / X.std())
    np.testing.assert_allclose(tf.offset_, -X.mean() / X.std())


def test_scale_is_a_plain_multiply():
    tf = make_transform("scale", factor=1 / 255).fit(np.zeros((1, 3)))
    np.testing.assert_array_equal(tf.transform(np.array([[255.0, 0, 51]])), [[1.0, 0, 0.2]])
