"""The spec's sections: pydantic models that fail loudly on an unknown key, a wrong type or an
out-of-range value. Fields left unset (``None``) are filled from the chosen profile by
:func:`scalelab._spec.resolve`."""

from __future__ import annotations

import math
from functools import cached_property
import re
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ..data._registry import DATASETS as REGISTERED_DATASETS
from ._errors import SpecError  # noqa: F401  (raised here; others import it from here too)
from ._key import computed_json as _computed_json, register_trial_spec
from ._trajectory import TrajectorySpec
from ._cv import CVSpec, GeneratorSpec   # the cross-validation sections (issue 17)


def _parse_number(v):
    """Accept numbers and fraction strings such as "1/255" (TOML has no fractions)."""
    if isinstance(v, str):
        try:
            return float(Fraction(v.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"expected a number or a fraction like '1/255', got {v!r}") from None
        except OverflowError:
            raise ValueError(f"{v!r} is too large for a float (at most about 1.8e308)") from None
    return v


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v}")
    return v


def _pair(v):
    """TOML and --set have arrays, not tuples: [0, 1] is the pair (0, 1)."""
    return tuple(v) if isinstance(v, list) else v


Num = Annotated[float, BeforeValidator(_parse_number), AfterValidator(_finite)]
Range = Annotated[tuple[Num, Num], BeforeValidator(_pair)]
Seed = Annotated[int, Field(ge=0, lt=2 ** 63)]   # numpy and SQLite take seeds below 2**63


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def __getitem__(self, key: str):
        """Read access by key (``spec["optim"]["lr"]``) for callers that think of a spec as
        the TOML table it came from; the package itself reads attributes."""
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)


DATASETS = tuple(REGISTERED_DATASETS)   # data.dataset: the registered names (scalelab/data/_registry.py)
INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
         "normal_glorot", "torch_default")


class DataSpec(_Section):
    dataset: Literal[DATASETS] = "fashion-mnist"
    dir: str | None = None                 # Fashion-MNIST folder (else --data-dir, SCALELAB_DATA, known places)
    verify: bool = True                    # check the official sha256 of Fashion-MNIST files
    path: str | None = None                # dataset = "file": an .npz (X, y) or .csv
    target: str | None = None              # CSV target column
    task: Literal["classification", "regression"] | None = None
    validation: Num = Field(0.0, ge=0)     # fraction (< 1) or count (>= 1) taken from the end of the training set
    train_subset: int | None = Field(None, ge=1)  # keep only the first N training samples
    test_subset: int | None = Field(None, ge=1)
    test_fraction: Num = Field(0.2, gt=0, lt=1)   # for sets that ship without a test split
    holdout: bool = True                   # scikit-learn sets: false trains and evaluates on all rows (no test split)
    split_seed: int = 0                    # also the seed of a synthetic data set
    n_samples: int | None = Field(None, ge=2)   # synthetic sets: training samples (default: the generator's)
    noise: Num = Field(0.1, ge=0)          # synthetic regression: noise std
    # token data: dataset = "text" (generated) or a "file" of token ids (X int (n, T), 0 = padding)
    vocab: int | None = Field(None, ge=4)  # ids 0..vocab-1 (text: default 20000; file: marks token data)
    seq_len: int = Field(50, ge=2)         # text: tokens per sequence
    text_rule: Literal["order", "presence"] = "order"   # text: label by the markers' order, or by which is present
    text_lengths: Literal["fixed", "variable"] = "fixed"   # text: variable lengths are front-padded with 0
    generator: GeneratorSpec | None = None   # pn-synthetic / fmnist-pair parameters (_cv.py)


class _TransformSection(_Section):
    """A section that names an affine transform (none, scale, standardize, minmax)."""

    def make_transform(self):
        """The section's transform, unfitted (see :mod:`scalelab._transforms`)."""
        from .._transforms import make_transform

        params = {"scale": {"factor": self.scale}, "standardize": {"per_feature": self.per_feature},
                  "minmax": {"feature_range": self.feature_range, "per_feature": self.per_feature},
                  "none": {}}[self.transform]
        return make_transform(self.transform, **params)


def _nonzero_scale(v: float) -> float:
    if v == 0:
        raise ValueError("a scale of 0 maps every value to 0 and cannot be undone; give a non-zero factor such "
                         "as 1/255")
    return v


class InputSpec(_TransformSection):
    transform: Literal["none", "scale", "standardize", "minmax"] = "none"
    scale: Annotated[Num, AfterValidator(_nonzero_scale)] = 1.0   # factor for transform = "scale"
    per_feature: bool = True               # standardize / minmax per feature or over all values
    feature_range: Range = (0.0, 1.0)
    # Train as the model whose inputs are multiplied by this factor would: the first
    # layer's init, lr, eps, L2 and weight decay are rescaled exactly (see _equivalence).
    equivalent_to: Num | None = Field(None, gt=0)
    features: list[str] = []               # extra columns computed from raw ones, e.g. ["sin(x0)"]

    @field_validator("features")
    @classmethod
    def _known_features(cls, v):
        from ..data._synthetic import parse_feature

        for f in v:
            parse_feature(f)  # raises with the accepted forms
        return v


class TargetSpec(_TransformSection):
    """Regression targets: transformed (fitted on training targets) for training; metrics are
    reported in the original units through the inverse transform."""

    transform: Literal["none", "scale", "standardize", "minmax"] = "none"
    scale: Annotated[Num, AfterValidator(_nonzero_scale)] = 1.0
    per_feature: bool = False              # one statistic over all target values (e.g. all pixels)
    feature_range: Range = (0.0, 1.0)


class ModelSpec(_Section):
    kind: Literal["mlp", "fcn", "layers", "trajectory"] = "mlp"  # fcn: fully convolutional; layers: the list below
    # trajectory: an LSTM encoder–decoder with the head loss.name names ([trajectory] section)
    hidden: list[Annotated[int, Field(ge=1)]] = [128]
    # kind = "layers": hidden layers as listed, e.g. [{kind = "dense", units = 64}, {kind = "activation"}];
    # a dense head with one unit per output follows
    layers: list[dict[str, Any]] = []
    conv: list[Annotated[int, Field(ge=1)]] = [16, 16]   # fcn: channels of the conv blocks
    kernel: int = Field(3, ge=1)
    batchnorm: bool = False                # BN before each hidden activation
    bn_momentum: Num | None = Field(None, ge=0, lt=1)   # share of the running average kept per step (Keras)
    bn_eps: Num | None = Field(None, gt=0)
    activation: Literal["relu", "tanh", "sigmoid", "linear"] = "relu"
    init: Literal[INITS] | list[Literal[INITS]] | None = None      # one scheme or one per layer
    init_scale: Num | list[Num] = 1.0      # multiplies each layer's initial weights
    # a scheme, a constant (bias_init = -3.0) or one of those per weighted layer (head included)
    bias_init: Literal["zeros", "torch_default"] | Num | list[Literal["zeros", "torch_default"] | Num] | None = None


class LossSpec(_Section):
    name: Literal["crossentropy", "mse", "mae",
                  # registered losses (scalelab._losses.LOSSES): the trajectory heads
                  "trajectory_mse", "grid_softmax", "mdn_nll", "cvae_elbo"] = "crossentropy"
    from_logits: bool | None = None        # False: softmax output, clipped probabilities (Keras)
    clip: Num | None = Field(None, ge=0, lt=0.5)  # probability clip of the softmax output


class OptimSpec(_Section):
    # lazy_adam, sparse_adam, sparse_sgd: embedding tables updated on the rows a batch uses (optim._rows)
    name: Literal["sgd", "momentum", "adam", "adamw", "lazy_adam", "sparse_adam", "sparse_sgd"] = "adam"
    lr: Num = Field(1e-3, gt=0)
    momentum: Num = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    beta1: Num = Field(0.9, ge=0, lt=1)
    beta2: Num = Field(0.999, ge=0, lt=1)
    eps: Num | None = Field(None, ge=0)
    eps_mode: Literal["keras", "torch"] | None = None  # where eps enters Adam's denominator
    l2: Num = Field(0.0, ge=0)             # penalty l2 * sum(W**2) on kernels, added to the loss
    l1: Num = Field(0.0, ge=0)             # l1 * sum|W| on kernels, by a proximal step (optim/_proximal.py)
    weight_decay: Num = Field(0.0, ge=0)   # decoupled: each step W -= lr * weight_decay * W
    lr_mult: list[Num] | None = None       # per-layer multipliers, one per dense layer
    eps_mult: list[Num] | None = None
    l2_mult: list[Num] | None = None
    wd_mult: list[Num] | None = None


def _device(v: str) -> str:
    if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", v):
        raise ValueError("not a device; use cpu, cuda, cuda:N or auto")
    return v


def _probe_rows(v: str) -> str:
    if v != "random" and not re.fullmatch(r"first:[1-9][0-9]*", v):
        raise ValueError("probe rows are 'random' or 'first:N' with N ≥ 1, e.g. 'first:2000'")
    return v


class TrainSpec(_Section):
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(5, ge=1)
    steps: int | None = Field(None, ge=1)  # training length in optimizer steps instead of epochs (the last epoch is cut)
    shuffle: bool = True
    device: Annotated[str, AfterValidator(_device)] = "cpu"   # cpu, cuda, cuda:N or auto
    dtype: Literal["float32", "float64"] = "float32"
    group_size: int | None = Field(None, ge=1)  # models per stacked group; None: chosen for the device
    compile: bool | None = None            # torch.compile the step; None: where it helps
    flush_denormals: bool = True           # float32 denormals → 0 on CPU (as TensorFlow does): much faster
    # the trained parameters stored with each trial (scalelab.load): none; those after the last
    # epoch; or those of the epoch with the best validation metric (accuracy, else error in the
    # targets' units, else the validation loss). Left out of the key at "none" (old keys hold).
    keep: Literal["none", "final", "best"] = "none"


class ProbesSpec(_Section):
    preset: Literal["none", "cheap", "standard", "full"] = "none"
    only: list[str] | None = None          # explicit probe names instead of the preset's
    schedule: Literal["log", "linear"] = "log"
    points_per_decade: int = Field(8, ge=1)   # log schedule
    every: int = Field(100, ge=1)          # linear schedule
    batch: int = Field(512, ge=1)          # fixed training rows the forward probes look at
    # which rows: "random" (batch rows drawn once, a fixed generator) or "first:N" (the first N training rows)
    rows: Annotated[str, AfterValidator(_probe_rows)] = "random"
    hessian_batch: int = Field(256, ge=1)
    hessian_iters: int = Field(20, ge=1)


class _Sections(_Section):
    """What a study and each of its trials share: the name, the profile and every section."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    question: str = ""
    profile: Literal["keras", "keras-logits", "torch"] = "keras"
    # a count of seeds (0 .. n-1) or a list; a count past a million is a typo, not a study
    seeds: list[Seed] | Annotated[int, Field(ge=1, le=1_000_000)] = 5

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list trains nothing; give a count (seeds = 5) or seeds = [0, 1, ...]")
            dup = sorted({s for s in v if v.count(s) > 1})
            if dup:
                raise ValueError(f"seed(s) {', '.join(map(str, dup))} repeated; each seed trains one model, list it once")
        return v
    data: DataSpec = DataSpec()
    input: InputSpec = InputSpec()
    target: TargetSpec = TargetSpec()
    model: ModelSpec = ModelSpec()
    loss: LossSpec = LossSpec()
    optim: OptimSpec = OptimSpec()
    train: TrainSpec = TrainSpec()
    probes: ProbesSpec = ProbesSpec()
    trajectory: TrajectorySpec | None = None   # optional: left out of a trial's key while unset
    cv: CVSpec | None = None             # repeated stratified k-fold × seeds (_cv.py)


class EffectiveSpec(_Section):
    """Per weighted layer (one value per kernel, in layer order), what the optimizer really
    uses: the section's value × its per-layer multiplier × the input.equivalent_to multiplier
    of the first kernel. Biases take lr and eps × the per-layer multiplier only."""

    lr: list[float]
    eps: list[float]
    l2: list[float]
    weight_decay: list[float]
    init_scale: list[float]


class TrialSpec(_Sections):
    """The resolved spec of one trial: every section, every profile default filled in
    (:func:`resolve`), frozen, and the effective per-layer hyperparameters. Code reads it by
    attribute (``spec.train.batch_size``)."""

    effective: EffectiveSpec | None = None

    @cached_property
    def computed_json(self) -> str:
        """What the trial computes as JSON (the key's part; the study's name and seeds left out)."""
        return _computed_json(self.model_dump())


register_trial_spec(TrialSpec)


class VerifyCause(_Section):
    """One cause a verification study measures a remedy for: the finding, the level it was
    found at, the remedy (in words and as spec changes) and the two arms that hold it."""

    finding: str
    level: dict[str, Any]
    remedy: str
    change: dict[str, Any]
    before: str                            # the arm that reruns the level as found
    after: str                             # the arm with the remedy applied


class VerifySpec(_Section):
    """A verification study (studies/_verify.py): each cause's remedy arm next to its level."""

    of: str                                # the study whose causes are verified
    causes: list[VerifyCause] = []


# what a study has and its trials do not (left out of every trial's spec)
STUDY_ONLY = {"grid", "arms", "descriptions", "verify"}


class StudySpec(_Sections):
    """A study: the sections of a trial plus the factors that vary."""

    grid: dict[str, list[Any]] = {}
    # Named arms: each a set of dotted-key overrides (a level that is not a grid product);
    # crossed with the grid when both are given.
    arms: dict[str, dict[str, Any]] = {}
    # One line per level value for readers of reports and the CLI: "input.scale=1/255" or
    # "arm=A" -> what that value means. Presentation only: not part of a trial.
    descriptions: dict[str, str] = {}
    # a verification study: which causes of which study its arms verify (None: any other study)
    verify: VerifySpec | None = None

    def seed_list(self) -> "range | list[int]":
        return range(self.seeds) if isinstance(self.seeds, int) else list(self.seeds)
