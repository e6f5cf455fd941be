"""Models as lists of layers over a stacked group; one file per layer kind.

A layer kind is one class (see :class:`Layer`) plus one line in :data:`LAYERS`; the
spec's ``model.layers`` list and :func:`build_model` then know it.
"""

from . import _mlp_fast as mlp_fast
from ._activation import ACTIVATIONS, Activation
from ._base import Layer, Param, Pass
from ._batchnorm import BatchNorm
from ._build import build_model
from ._conv import Conv, FromImage, ToImage
from ._dense import Dense
from ._embedding import Embedding, Pool
from ._init import init_bias, init_kernel, init_orthogonal
from ._lstm import Lstm
from ._model import Model, stack_params

# layer kinds a spec can name in model.layers
LAYERS: dict[str, type[Layer]] = {"dense": Dense, "activation": Activation, "batchnorm": BatchNorm, "lstm": Lstm}
LAYERS.update(embedding=Embedding, pool=Pool)   # token models (see _embedding)

# backward passes by hand, each for the models it applies to (checked against autograd)
FAST_BACKWARDS = (mlp_fast,)


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a layer kind known to specs (``model.layers = [{kind = "..."}]``); usable as a decorator."""
    LAYERS[cls.kind] = cls
    return cls


__all__ = ["ACTIVATIONS", "Activation", "BatchNorm", "Conv", "Dense", "Embedding", "FAST_BACKWARDS", "FromImage", "LAYERS",
           "Layer", "Lstm", "Model", "Param", "Pass", "Pool", "ToImage", "build_model", "init_bias", "init_kernel", "init_orthogonal", "mlp_fast",
           "register_layer", "stack_params"]
