"""The spec sections of a cross-validated study (issue 17): the p≫n generator's parameters
(``data.generator``) and the evaluation (``cv``): repeated stratified k-fold × seeds, nested
selection, and what an arm is (the network, a scikit-learn estimator, the seed ensemble).

Both default to None, and a None section is left out of a trial's key, so studies written
before these sections existed keep their keys (and their stored trials)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v}")
    return v


# The same rules as every section (_sections._Section): unknown keys, wrong types and
# non-finite numbers fail loudly. Defined here, not imported, so that _sections can import
# this module without an import cycle.
Num = Annotated[float, AfterValidator(_finite)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

ESTIMATORS = ("network", "ensemble", "svm-rbf", "logreg-l2", "logreg-l1")


class GeneratorSpec(_Section):
    """``data.dataset = "pn-synthetic"``: two Gaussian classes with a shared block covariance
    (see :func:`scalelab.evaluation.make_pn_classification`). ``data.dataset = "fmnist-pair"``
    reads ``classes`` and ``n`` only."""

    n: int = Field(100, ge=4)                   # samples (development + test)
    p: int = Field(10_000, ge=1)                # features
    informative: int = Field(100, ge=1)         # features whose class means differ
    block: int = Field(10, ge=1)                # features per correlated block
    rho: Num = Field(0.5, ge=0, lt=1)           # correlation inside a block
    class_sep: Num = Field(2.0, gt=0)           # mean difference per informative feature (in stds)
    label_noise: Num = Field(0.05, ge=0, lt=0.5)  # share of labels flipped at random
    balance: Num = Field(0.5, gt=0, lt=1)       # share of class 1
    classes: list[int] = [0, 6]                 # fmnist-pair: the two classes (T-shirt/top, shirt)

    @model_validator(mode="after")
    def _fits(self):
        if self.informative > self.p:
            raise ValueError(f"informative = {self.informative} is more than p = {self.p} features")
        if len(self.classes) != 2 or len(set(self.classes)) != 2 or not all(0 <= c <= 9 for c in self.classes):
            raise ValueError(f"classes = {self.classes}: give two different Fashion-MNIST classes 0..9")
        return self


# how a selected hyperparameter (cv.select) is written in tables and progress lines
SELECT_LABEL = {"optim.l2": "λ₂", "optim.l1": "λ₁", "cv.pca": "k", "cv.C": "C"}


class CVSpec(_Section):
    """Repeated stratified k-fold × seeds on the development rows, after a stratified test
    hold-out that only the final fit of each arm sees (once). An arm chooses ``select`` (a
    dotted spec key, or ``cv.C`` / ``cv.pca``) among ``values`` on inner folds of each outer
    training set."""

    folds: int = Field(5, ge=2)
    repeats: int = Field(1, ge=1)
    inner_folds: int = Field(4, ge=2)
    inner_seeds: int = Field(5, ge=1)           # seeds per candidate on inner folds (the first ones)
    test_fraction: Num = Field(0.2, gt=0, lt=1)
    estimator: Literal[ESTIMATORS] = "network"
    select: str | None = None                   # e.g. "optim.l2", "optim.l1", "cv.pca", "cv.C"
    values: list[Num] = []
    pca: int = Field(0, ge=0)                   # components fitted on each training fold (0: none)
    C: Num = Field(1.0, gt=0)                   # scikit-learn estimators' inverse regularization
    early_stopping: bool = False                # stop on an inner split of the training fold
    es_fraction: Num = Field(0.2, gt=0, lt=1)
    patience: int = Field(10, ge=1)
    ensemble: int = Field(5, ge=1)              # estimator = "ensemble": seeds averaged per ensemble
    # where a trial sits (set per trial by the runner; None in a study's spec)
    repeat: int | None = None
    fold: int | None = None                     # -1: the final fit on every development row
    inner: int | None = None

    @field_validator("select")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in ("optim.l2", "optim.l1", "cv.pca", "cv.C"):
            raise ValueError(f"select = {v!r}: choose optim.l2, optim.l1, cv.pca or cv.C")
        return v

    @model_validator(mode="after")
    def _values(self):
        if self.select and not self.values:
            raise ValueError(f"select = {self.select!r} needs values, e.g. values = [1e-5, 1e-4, 1e-3]")
        if self.select == "cv.pca" and any(v < 1 or v != int(v) for v in self.values):
            raise ValueError("select = 'cv.pca' takes whole numbers of components, e.g. [5, 10, 20, 50]")
        if self.select == "cv.C" and self.estimator in ("network", "ensemble"):
            raise ValueError("select = 'cv.C' is for scikit-learn estimators (svm-rbf, logreg-l2, logreg-l1)")
        return self

