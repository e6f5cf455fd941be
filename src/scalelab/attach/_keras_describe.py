"""A Keras 3 model, its compiled loss and optimizer as a :class:`~._model.ModelDesc`
(Keras API only: the same on every backend)."""

from __future__ import annotations

import numpy as np

import keras

from ._model import LayerDesc, ModelDesc

LOSS_NAMES = {"categorical_crossentropy": "categorical_crossentropy",
              "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
              "binary_crossentropy": "binary_crossentropy", "binary_focal_crossentropy": "binary_crossentropy",
              "categorical_focal_crossentropy": "categorical_crossentropy",
              "mean_squared_error": "mse", "mse": "mse", "mean_absolute_error": "mae", "mae": "mae",
              "huber": "huber", "log_cosh": "huber", "mean_squared_logarithmic_error": "mse"}
# layers that pass their input through unchanged in shape-only or affine ways (no nonlinearity)
AFFINE = ("Dropout", "Flatten", "Reshape", "BatchNormalization", "LayerNormalization", "GaussianNoise",
          "SpatialDropout1D", "SpatialDropout2D", "AlphaDropout", "Permute", "RepeatVector", "InputLayer")


def activation_name(act) -> str | None:
    if act is None:
        return None
    name = getattr(act, "__name__", None) or type(act).__name__
    return {"relu": "relu", "softmax": "softmax", "sigmoid": "sigmoid", "linear": "linear", "tanh": "tanh",
            "log_softmax": "log_softmax"}.get(name, name.lower())


def layer_desc(layer) -> LayerDesc:
    cls = type(layer).__name__
    act = activation_name(getattr(layer, "activation", None))
    if isinstance(layer, keras.layers.Dense):
        return LayerDesc(layer.name, "dense", int(layer.units), act or "linear", cls)
    if "Conv" in cls:
        return LayerDesc(layer.name, "conv", int(getattr(layer, "filters", 0) or 0) or None, act or "linear", cls)
    if cls in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
        return LayerDesc(layer.name, "rnn", getattr(layer, "units", None), None, cls)
    if isinstance(layer, keras.layers.Embedding):
        return LayerDesc(layer.name, "embedding", int(layer.output_dim), None, cls)
    if isinstance(layer, keras.layers.Softmax):
        return LayerDesc(layer.name, "activation", None, None, cls + ":softmax")
    if isinstance(layer, keras.layers.ReLU):
        return LayerDesc(layer.name, "activation", None, None, cls + ":relu")
    if isinstance(layer, (keras.layers.Activation, keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.ELU)):
        return LayerDesc(layer.name, "activation", None, None, f"{cls}:{act or cls.lower()}")
    kind = ("norm" if "Normalization" in cls else "dropout" if "Dropout" in cls or "Noise" in cls else
            "flatten" if cls in ("Flatten", "Reshape", "Permute") else "other")
    return LayerDesc(layer.name, kind, None, None, cls)


def _act_of(desc: LayerDesc) -> str | None:
    return desc.cls.split(":", 1)[1] if desc.kind == "activation" and ":" in desc.cls else None


def describe_keras(model, leaves) -> ModelDesc:
    descs = [layer_desc(layer) for layer in leaves if not isinstance(layer, keras.layers.InputLayer)]
    d = ModelDesc("keras", descs)
    # the output: the last weighted layer's activation, or a separate activation layer after it
    weighted = [x for x in descs if x.kind in ("dense", "conv")]
    last = descs[-1] if descs else None
    if last is not None and last.kind == "activation":
        d.output_activation = _act_of(last) or "unknown"
        d.output_layer = last.name
        d.output_units = weighted[-1].units if weighted else None
    elif last is not None and last.kind in ("dense", "conv"):
        d.output_activation, d.output_layer, d.output_units = last.activation or "linear", last.name, last.units
    elif last is not None:
        d.output_activation, d.output_layer = "unknown", last.name
        d.output_units = weighted[-1].units if weighted else None
    try:
        outs = model.outputs
        if outs is not None and len(outs) == 1:
            d.output_units = int(outs[0].shape[-1])
    except (AttributeError, ValueError, TypeError):
        pass
    # weighted layers with nothing nonlinear between them (dropout, flatten and normalization are affine at inference)
    prev, nonlinear = None, True
    for x in descs:
        if x.kind in ("dense", "conv"):
            if prev is not None and not nonlinear:
                d.linear_pairs.append((prev.name, x.name))
            prev, nonlinear = x, (x.activation not in ("linear", None))
        elif x.kind == "activation":
            nonlinear = nonlinear or (_act_of(x) not in ("linear", None))
        elif x.cls not in AFFINE and x.kind not in ("norm", "dropout", "flatten"):
            prev, nonlinear = None, True   # a layer we do not read (an RNN, attention): not counted
    # the loss, as compiled
    loss = model.loss
    if isinstance(loss, (list, tuple, dict)):
        d.loss, d.loss_call = "multiple", f"{len(loss)} losses"
    else:
        fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        inner = getattr(fn, "fn", fn)
        name = getattr(inner, "__name__", type(inner).__name__)
        d.loss = LOSS_NAMES.get(name, f"custom:{name}")
        kwargs = dict(getattr(fn, "_fn_kwargs", {}) or {})
        d.from_logits = bool(kwargs.get("from_logits", getattr(fn, "from_logits", False)))
        d.loss_call = (f'loss="{loss}"' if isinstance(loss, str) else
                       f"keras.losses.{type(fn).__name__}({'from_logits=True' if d.from_logits else ''})"
                       if isinstance(fn, keras.losses.Loss) else f"loss={name}")
    o = model.optimizer
    if o is not None:
        d.optimizer = type(o).__name__
        hyper = {}
        try:
            hyper["learning_rate"] = float(np.asarray(keras.ops.convert_to_numpy(o.learning_rate)))
        except (TypeError, ValueError, AttributeError):
            pass
        for k in ("momentum", "beta_1", "beta_2", "weight_decay", "clipnorm"):
            v = getattr(o, k, None)
            if isinstance(v, (int, float)) and v:
                hyper[k] = float(v)
        d.hyper = hyper
    return d
