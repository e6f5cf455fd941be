"""Study specs: a TOML file or the same thing as a Python object.

A spec fails loudly: an unknown key, a wrong type or an out-of-range value is a
:class:`SpecError` with one line naming the key path and what is allowed.
Fields left unset (``None``) are filled from the chosen profile by :func:`resolve`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ._levels import level_label


class SpecError(ValueError):
    """A spec that cannot be run; the message is one actionable line."""


def _parse_number(v):
    """Accept numbers and fraction strings such as "1/255" (TOML has no fractions)."""
    if isinstance(v, str):
        try:
            return float(Fraction(v.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"expected a number or a fraction like '1/255', got {v!r}") from None
    return v


Num = Annotated[float, BeforeValidator(_parse_number)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def __getitem__(self, key: str):
        """Read access by key (``spec["optim"]["lr"]``) for callers that think of a spec as
        the TOML table it came from; the package itself reads attributes."""
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)


DATASETS = ("fashion-mnist", "digits", "breast_cancer", "wine", "diabetes", "iris", "file", "heatmap", "sin-plus-y")
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
    split_seed: int = 0                    # also the seed of a synthetic data set
    n_samples: int | None = Field(None, ge=2)   # synthetic sets: training samples (default: the generator's)
    noise: Num = Field(0.1, ge=0)          # synthetic regression: noise std


class InputSpec(_Section):
    transform: Literal["none", "scale", "standardize", "minmax"] = "none"
    scale: Num = 1.0                       # factor for transform = "scale"
    per_feature: bool = True               # standardize / minmax per feature or over all values
    feature_range: tuple[Num, Num] = (0.0, 1.0)
    # Train as the model whose inputs are multiplied by this factor would: the first
    # layer's init, lr, eps, L2 and weight decay are rescaled exactly (see _equivalence).
    equivalent_to: Num | None = Field(None, gt=0)
    features: list[str] = []               # extra columns computed from raw ones, e.g. ["sin(x0)"]

    @field_validator("features")
    @classmethod
    def _known_features(cls, v):
        from ._synthetic import parse_feature

        for f in v:
            parse_feature(f)  # raises with the accepted forms
        return v


class TargetSpec(_Section):
    """Regression targets: transformed (fitted on training targets) for training; metrics are
    reported in the original units through the inverse transform."""

    transform: Literal["none", "scale", "standardize", "minmax"] = "none"
    scale: Num = 1.0
    per_feature: bool = False              # one statistic over all target values (e.g. all pixels)
    feature_range: tuple[Num, Num] = (0.0, 1.0)


class ModelSpec(_Section):
    kind: Literal["mlp", "fcn", "layers"] = "mlp"  # fcn: fully convolutional; layers: the list below
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
    bias_init: Literal["zeros", "torch_default"] | None = None


class LossSpec(_Section):
    name: Literal["crossentropy", "mse", "mae"] = "crossentropy"
    from_logits: bool | None = None        # False: softmax output, clipped probabilities (Keras)
    clip: Num | None = Field(None, ge=0, lt=0.5)  # probability clip of the softmax output


class OptimSpec(_Section):
    name: Literal["sgd", "momentum", "adam", "adamw"] = "adam"
    lr: Num = Field(1e-3, gt=0)
    momentum: Num = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    beta1: Num = Field(0.9, ge=0, lt=1)
    beta2: Num = Field(0.999, ge=0, lt=1)
    eps: Num | None = Field(None, ge=0)
    eps_mode: Literal["keras", "torch"] | None = None  # where eps enters Adam's denominator
    l2: Num = Field(0.0, ge=0)             # penalty l2 * sum(W**2) on kernels, added to the loss
    weight_decay: Num = Field(0.0, ge=0)   # decoupled: each step W -= lr * weight_decay * W
    lr_mult: list[Num] | None = None       # per-layer multipliers, one per dense layer
    eps_mult: list[Num] | None = None
    l2_mult: list[Num] | None = None
    wd_mult: list[Num] | None = None


class TrainSpec(_Section):
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(5, ge=1)
    shuffle: bool = True
    device: str = "cpu"                    # cpu, cuda, cuda:N or auto
    dtype: Literal["float32", "float64"] = "float32"
    group_size: int | None = Field(None, ge=1)  # models per stacked group; None: chosen for the device
    compile: bool | None = None            # torch.compile the step; None: where it helps
    flush_denormals: bool = True           # float32 denormals → 0 on CPU (as TensorFlow does): much faster


class ProbesSpec(_Section):
    preset: Literal["none", "cheap", "standard", "full"] = "none"
    only: list[str] | None = None          # explicit probe names instead of the preset's
    schedule: Literal["log", "linear"] = "log"
    points_per_decade: int = Field(8, ge=1)   # log schedule
    every: int = Field(100, ge=1)          # linear schedule
    batch: int = Field(512, ge=1)          # fixed training rows the forward probes look at
    hessian_batch: int = Field(256, ge=1)
    hessian_iters: int = Field(20, ge=1)


class _Sections(_Section):
    """What a study and each of its trials share: the name, the profile and every section."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    question: str = ""
    profile: Literal["keras", "keras-logits", "torch"] = "keras"
    seeds: list[int] | Annotated[int, Field(ge=1)] = 5
    data: DataSpec = DataSpec()
    input: InputSpec = InputSpec()
    target: TargetSpec = TargetSpec()
    model: ModelSpec = ModelSpec()
    loss: LossSpec = LossSpec()
    optim: OptimSpec = OptimSpec()
    train: TrainSpec = TrainSpec()
    probes: ProbesSpec = ProbesSpec()


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


class StudySpec(_Sections):
    """A study: the sections of a trial plus the factors that vary."""

    grid: dict[str, list[Any]] = {}
    # Named arms: each a set of dotted-key overrides (a level that is not a grid product);
    # crossed with the grid when both are given.
    arms: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_toml(cls, path: str | Path) -> "StudySpec":
        path = Path(path)
        if not path.exists():
            raise SpecError(f"spec file {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"{path}: not valid TOML ({e})") from None
        return parse_spec(raw, source=str(path))

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


# ----------------------------------------------------------------------------- errors

def _allowed_keys(loc: tuple) -> list[str]:
    cls: Any = StudySpec
    for part in loc[:-1]:
        f = getattr(cls, "model_fields", {}).get(part)
        if f is None:
            return []
        cls = f.annotation
    return list(getattr(cls, "model_fields", {}))


def _one_line(e: ValidationError, source: str) -> str:
    err = e.errors()[0]
    loc = tuple(str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal[", "list[", "int", "float",
                                                                      "str", "bool", "tuple[", "constrained")))
    path = ".".join(loc) or "(top level)"
    where = f"{source}: " if source else ""
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(tuple(p for p in err["loc"]))
        return f"{where}unknown key '{path}'; allowed here: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{where}missing key '{path}'"
    msg = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    got = err.get("input")
    return f"{where}{path} = {got!r}: {msg}"


def parse_spec(raw: dict, source: str = "") -> StudySpec:
    """Validate a plain dict (e.g. parsed TOML) into a :class:`StudySpec`."""
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_one_line(e, source)) from None
    _check_grid(spec, source)
    return spec


# ----------------------------------------------------------------------------- profiles

PROFILES = {
    # Keras (torch/JAX backends, old tf.keras): softmax output, probabilities clipped to
    # [1e-7, 1 - 1e-7] before the log, Glorot-uniform kernels, zero biases, Adam eps 1e-7
    # added to sqrt of the uncorrected second moment.
    "keras": dict(init="glorot_uniform", bias_init="zeros", from_logits=False, clip=1e-7,
                  eps=1e-7, eps_mode="keras", bn_momentum=0.99, bn_eps=1e-3),
    # Keras on TensorFlow recovers the logits of a softmax output: cross-entropy on logits.
    "keras-logits": dict(init="glorot_uniform", bias_init="zeros", from_logits=True, clip=1e-7,
                         eps=1e-7, eps_mode="keras", bn_momentum=0.99, bn_eps=1e-3),
    # PyTorch defaults: nn.Linear init, F.cross_entropy on logits, torch.optim eps.
    "torch": dict(init="torch_default", bias_init="torch_default", from_logits=True, clip=0.0,
                  eps=1e-8, eps_mode="torch", bn_momentum=0.9, bn_eps=1e-5),
}


def _weighted_layers(model: dict) -> int:
    """Layers with a kernel (what per-layer lists such as lr_mult index), the head included."""
    if model["kind"] == "mlp":
        return len(model["hidden"]) + 1
    if model["kind"] == "fcn":
        return len(model["conv"]) + 1
    from .models import LAYERS

    for entry in model["layers"]:
        if entry.get("kind") not in LAYERS:
            raise SpecError(f"model.layers entry {entry}: unknown kind {entry.get('kind')!r}; known kinds: "
                            f"{', '.join(LAYERS)}")
    return sum(1 for e in model["layers"] if LAYERS[e["kind"]].weighted) + 1


def resolve(spec: StudySpec) -> StudySpec:
    """Fill every profile-dependent field left unset; the result has no ``None`` defaults."""
    p = PROFILES[spec.profile]
    d = spec.model_dump()
    model, loss, optim = d["model"], d["loss"], d["optim"]
    n_layers = _weighted_layers(model)
    kind_word = "conv" if model["kind"] == "fcn" else "dense"
    for section, key in (("model", "bn_momentum"), ("model", "bn_eps"), ("model", "init"), ("model", "bias_init"),
                         ("loss", "from_logits"), ("loss", "clip"), ("optim", "eps"), ("optim", "eps_mode")):
        if d[section][key] is None:
            d[section][key] = p[key]
    for key in ("lr_mult", "eps_mult", "l2_mult", "wd_mult"):
        v = optim[key]
        if v is None:
            optim[key] = [1.0] * n_layers
        elif len(v) != n_layers:
            raise SpecError(f"optim.{key} has {len(v)} values but the model has {n_layers} {kind_word} layers; "
                            f"give one multiplier per layer")
    inp = d["input"]
    if inp["equivalent_to"] is not None and model["kind"] != "mlp":
        raise SpecError("input.equivalent_to is derived for a dense first layer; use model.kind = 'mlp'")
    if inp["equivalent_to"] is not None and inp["transform"] not in ("none", "scale"):
        raise SpecError(f"input.equivalent_to needs input.transform = 'scale' or 'none' (got "
                        f"{inp['transform']!r}); a per-feature transform has no per-layer equivalent")
    for key in ("init", "init_scale"):
        v = model[key]
        if isinstance(v, list) and len(v) != n_layers:
            raise SpecError(f"model.{key} has {len(v)} values but the model has {n_layers} {kind_word} layers; "
                            f"give one value, or one per layer")
    return StudySpec.model_validate(d)


# ----------------------------------------------------------------------------- grid and trials

def _set_path(d: dict, path: str, value) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _get_path(d: dict, path: str):
    for p in path.split("."):
        d = d[p]
    return d


def _check_key(base: dict, key: str, where: str, what: str) -> None:
    if key in ("name", "grid", "arms", "seeds", "profile", "question"):
        raise SpecError(f"{where}{what} '{key}' cannot vary; vary a key inside a section, e.g. 'input.scale'")
    try:
        _get_path(base, key)
    except (KeyError, TypeError):
        raise SpecError(f"{where}{what} '{key}' is not a spec key; use a dotted path such as "
                        f"'input.scale' or 'optim.lr'") from None


def _check_grid(spec: StudySpec, source: str) -> None:
    where = f"{source}: " if source else ""
    base = spec.model_dump(exclude={"grid", "arms"})
    for key, values in spec.grid.items():
        _check_key(base, key, where, "grid key")
        if not values:
            raise SpecError(f"{where}grid.{key} is empty; give at least one value")
        for v in values:
            trial = copy.deepcopy(base)
            _set_path(trial, key, v)
            try:
                StudySpec.model_validate(trial)
            except ValidationError as e:
                raise SpecError(f"{where}grid.{key} value {v!r}: " + _one_line(e, "").split(": ", 1)[-1]) from None
    for arm, overrides in spec.arms.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.*+-]*", arm):
            raise SpecError(f"{where}arms.{arm}: an arm name is letters, digits and _.*+-")
        trial = copy.deepcopy(base)
        for key, v in overrides.items():
            _check_key(base, key, where, f"arms.{arm}: key")
            if key in spec.grid:
                raise SpecError(f"{where}arms.{arm}: '{key}' is also swept in grid; set it in one place")
            _set_path(trial, key, v)
        try:
            StudySpec.model_validate(trial)
        except ValidationError as e:
            raise SpecError(f"{where}arms.{arm}: " + _one_line(e, "")) from None


class Trial(BaseModel):
    """One model to train: a point of the grid and a seed, with its fully resolved spec."""

    model_config = ConfigDict(frozen=True)
    study: str
    level: dict[str, Any]      # grid key -> value as written in the spec
    seed: int
    spec: TrialSpec            # resolved spec of this trial (grid applied, profile filled)

    @property
    def key(self) -> str:
        # what the trial computes; ``effective`` is derived from the rest
        blob = json.dumps({"spec": self.spec.model_dump(exclude={"effective"}), "seed": self.seed}, sort_keys=True,
                          default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def level_name(self) -> str:
        return level_label(self.level)


def effective_hyperparameters(s: StudySpec) -> dict:
    """The :class:`EffectiveSpec` of a resolved spec."""
    from ._equivalence import trial_parametrization

    o, m = s.optim, s.model
    n = len(o.lr_mult)
    e = trial_parametrization(s.model_dump())
    first = dict(lr=e.lr_mult, eps=e.eps_mult, l2=e.l2_mult, wd=e.wd_mult, init=e.init_scale) if e else {}
    scale = m.init_scale if isinstance(m.init_scale, list) else [m.init_scale] * n
    return dict(lr=[o.lr * o.lr_mult[i] * (first.get("lr", 1.0) if i == 0 else 1.0) for i in range(n)],
                eps=[o.eps * o.eps_mult[i] * (first.get("eps", 1.0) if i == 0 else 1.0) for i in range(n)],
                l2=[o.l2 * o.l2_mult[i] * (first.get("l2", 1.0) if i == 0 else 1.0) for i in range(n)],
                weight_decay=[o.weight_decay * o.wd_mult[i] * (first.get("wd", 1.0) if i == 0 else 1.0)
                              for i in range(n)],
                init_scale=[scale[i] * (first.get("init", 1.0) if i == 0 else 1.0) for i in range(n)])


def expand(spec: StudySpec) -> list[Trial]:
    """The trials of a study: arms × the factor grid (all combinations) × seeds, in a stable order."""
    base = spec.model_dump(exclude={"grid", "arms"})
    keys = list(spec.grid)
    arms = list(spec.arms.items()) or [(None, {})]
    trials = []
    for arm, overrides in arms:
        for combo in itertools.product(*(spec.grid[k] for k in keys)) if keys else [()]:
            d = copy.deepcopy(base)
            for k, v in [*overrides.items(), *zip(keys, combo)]:
                _set_path(d, k, v)
            try:
                resolved = resolve(StudySpec.model_validate(d))
            except ValidationError as e:
                raise SpecError(_one_line(e, "")) from None
            rdump = resolved.model_dump(exclude={"grid", "arms"})
            rspec = TrialSpec.model_validate({**rdump, "effective": effective_hyperparameters(resolved)})
            level = ({"arm": arm} if arm is not None else {}) | dict(zip(keys, combo))
            for seed in spec.seed_list():
                trials.append(Trial(study=spec.name, level=level, seed=seed, spec=rspec))
    return trials


def load_spec(obj: "str | Path | dict | StudySpec") -> StudySpec:
    """A spec from a TOML path, a dict or a StudySpec."""
    if isinstance(obj, StudySpec):
        _check_grid(obj, "")
        return obj
    if isinstance(obj, dict):
        return parse_spec(obj)
    return StudySpec.from_toml(obj)
