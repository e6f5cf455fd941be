"""Profiles (Keras, Keras on TensorFlow, PyTorch defaults) and the resolution of every field
a spec left unset; the effective per-layer hyperparameters of a resolved spec."""

from __future__ import annotations

from ._sections import SpecError, StudySpec


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
    if model["kind"] == "trajectory":   # one composite layer (encoder, decoder, head): one multiplier
        return 1
    from ..models import LAYERS

    for entry in model["layers"]:
        if entry.get("kind") not in LAYERS:
            raise SpecError(f"model.layers entry {entry}: unknown kind {entry.get('kind')!r}; known kinds: "
                            f"{', '.join(LAYERS)}")
    return sum(1 for e in model["layers"] if LAYERS[e["kind"]].weighted) + 1


def resolve(spec: StudySpec) -> StudySpec:
    """Fill every profile-dependent field left unset; the result has no ``None`` defaults."""
    p = PROFILES[spec.profile]
    d = spec.model_dump()
    if d.get("trajectory") is None and ("trajectory" in (d["model"]["kind"], d["data"]["dataset"][:-1])):
        d["trajectory"] = {}   # trajectory data or models: the section's defaults
    model, optim = d["model"], d["optim"]
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
    for key in ("init", "init_scale", "bias_init"):
        v = model[key]
        if isinstance(v, list) and len(v) != n_layers:
            raise SpecError(f"model.{key} has {len(v)} values but the model has {n_layers} {kind_word} layers; "
                            f"give one value, or one per layer")
    return StudySpec.model_validate(d)


def effective_hyperparameters(s: StudySpec) -> dict:
    """The :class:`EffectiveSpec` of a resolved spec."""
    from .._equivalence import trial_parametrization

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
