"""The model a trial's spec describes: ``model.kind`` mlp, fcn, or an explicit ``layers`` list."""

from __future__ import annotations

from ._activation import Activation
from ._batchnorm import BatchNorm
from ._conv import Conv, FromImage, ToImage
from ._dense import Dense
from ._model import Model


def build_model(model_spec, n_in: int, n_out: int, image_shape: tuple | None = None) -> Model:
    """The layers of a model, from a resolved ``model`` spec section:

    * ``mlp``: dense(–BN)–activation blocks of ``hidden`` widths and a dense head;
    * ``fcn``: a fully convolutional net of conv(–BN)–activation blocks with ``conv``
      channels and a plain conv head whose channels make n_out outputs per pixel;
    * ``layers``: the hidden layers as listed (``{kind = "dense", units = 64}``,
      ``{kind = "activation"}``, ``{kind = "batchnorm"}`` or any registered kind), then a
      dense head of n_out units.

    With ``batchnorm`` (mlp, fcn), each hidden block normalizes its pre-activations before
    the activation.
    """
    m = model_spec
    act = m.activation
    bn = dict(momentum=m.bn_momentum, eps=m.bn_eps)
    if m.kind == "mlp":
        sizes = [n_in, *m.hidden, n_out]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Dense(i, a, b))
            if i < len(sizes) - 2:
                if m.batchnorm:
                    layers.append(BatchNorm(i, b, **bn))
                layers.append(Activation(i, act))
        return Model(layers)
    if m.kind == "fcn":
        if image_shape is None:
            raise ValueError("model.kind = 'fcn' needs image-shaped inputs")
        c, h, w = image_shape
        if n_out % (h * w):
            raise ValueError(f"a fully convolutional model predicts per pixel: {n_out} targets are not a multiple "
                             f"of {h}×{w} pixels")
        chans = [c, *m.conv, n_out // (h * w)]
        layers = [ToImage(tuple(image_shape))]
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(Conv(i, a, b, m.kernel))
            if i < len(chans) - 2:
                if m.batchnorm:
                    layers.append(BatchNorm(i, b, **bn))
                layers.append(Activation(i, act))
        return Model([*layers, FromImage()])
    return Model(_from_list(m.layers, n_in, n_out, act, bn))


def _from_list(entries: list[dict], n_in: int, n_out: int, act: str, bn: dict) -> list:
    from . import LAYERS

    layers, width, counts, last_weighted = [], n_in, {}, -1
    for entry in entries:
        cfg = dict(entry)
        kind = cfg.pop("kind")
        cls = LAYERS[kind]
        if cls.weighted:
            last_weighted += 1
            index = last_weighted
        elif kind == "activation":
            index = max(last_weighted, 0)
            cfg.setdefault("fn", act)
        else:
            index = counts.get(kind, 0)
            if kind == "batchnorm":
                cfg = {**bn, **cfg}
        counts[kind] = counts.get(kind, 0) + 1
        try:
            layer = cls.from_config(index, width, cfg)
        except TypeError as e:
            raise ValueError(f"model.layers entry {entry}: {e}") from None
        layers.append(layer)
        width = layer.n_out(width)
    layers.append(Dense(last_weighted + 1, width, n_out))
    return layers
