"""A PyTorch model, its loss and optimizer as a :class:`~._model.ModelDesc`.

PyTorch code often applies activations as functions in ``forward`` (``F.relu``), where
no module shows them. So the description is also read off one forward pass: the leaf
modules in the order they ran, the input each weighted layer received and the output
each produced. Two weighted layers where the second's input *is* the first's output (the
same values) have nothing nonlinear between them; the model's output is read for what
made it (a softmax's rows sum to 1, see :func:`~._checks.infer_output_activation`).
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import infer_output_activation
from ._model import LayerDesc, ModelDesc

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
ACT_NAMES = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.SELU: "selu", nn.GELU: "gelu",
             nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Softmax: "softmax",
             nn.LogSoftmax: "log_softmax", nn.Softplus: "softplus", nn.ReLU6: "relu6", nn.Hardtanh: "hardtanh",
             nn.Mish: "mish", nn.PReLU: "prelu"}
LOSS_MODULES = {nn.CrossEntropyLoss: ("sparse_categorical_crossentropy", True), nn.NLLLoss: ("nll", False),
                nn.BCELoss: ("binary_crossentropy", False), nn.BCEWithLogitsLoss: ("binary_crossentropy", True),
                nn.MSELoss: ("mse", False), nn.L1Loss: ("mae", False), nn.HuberLoss: ("huber", False),
                nn.SmoothL1Loss: ("huber", False)}
LOSS_FUNCTIONS = {"cross_entropy": ("sparse_categorical_crossentropy", True), "nll_loss": ("nll", False),
                  "binary_cross_entropy": ("binary_crossentropy", False),
                  "binary_cross_entropy_with_logits": ("binary_crossentropy", True), "mse_loss": ("mse", False),
                  "l1_loss": ("mae", False), "huber_loss": ("huber", False), "smooth_l1_loss": ("huber", False)}
PASSTHROUGH = (nn.Dropout, nn.Flatten, nn.Identity, nn.Unflatten, nn.AlphaDropout, nn.Dropout1d, nn.Dropout2d)


def loss_kind(loss_fn) -> tuple[str, bool, str]:
    """(canonical loss, from_logits, the loss as written)."""
    for cls, (name, logits) in LOSS_MODULES.items():
        if isinstance(loss_fn, cls):
            return name, logits, f"nn.{cls.__name__}()"
    fname = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    if fname in LOSS_FUNCTIONS:
        name, logits = LOSS_FUNCTIONS[fname]
        return name, logits, f"F.{fname}"
    return f"custom:{fname}", False, fname


def describe_torch(model: nn.Module, loss_fn, optimizer, x: torch.Tensor | None, forward) -> ModelDesc:
    """``forward(x, hooks_on)``: the model run once on ``x`` with the given forward hooks
    registered (eval mode, no gradient); it may fail (a model that needs more inputs): then
    the description is the modules' registration order only."""
    d = ModelDesc("pytorch")
    d.loss, d.from_logits, d.loss_call = loss_kind(loss_fn)
    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]
    layers = []
    for i, (name, m) in enumerate(leaves):
        if isinstance(m, WEIGHTED):
            nxt = leaves[i + 1][1] if i + 1 < len(leaves) else None
            act = ACT_NAMES.get(type(nxt), "unknown") if nxt is not None else "linear"
            units = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            layers.append(LayerDesc(name, "dense" if isinstance(m, nn.Linear) else "conv", int(units), act,
                                    f"nn.{type(m).__name__}"))
        elif type(m) in ACT_NAMES:
            layers.append(LayerDesc(name, "activation", None, None, f"nn.{type(m).__name__}"))
        elif isinstance(m, (nn.RNNBase,)):
            layers.append(LayerDesc(name, "rnn", m.hidden_size, None, f"nn.{type(m).__name__}"))
        elif any(True for _ in m.parameters(recurse=False)) or isinstance(m, PASSTHROUGH):
            layers.append(LayerDesc(name, "other", None, None, f"nn.{type(m).__name__}"))
    d.layers = layers
    weighted = [layer for layer in layers if layer.kind in ("dense", "conv")]
    if weighted:
        d.output_units, d.output_layer = weighted[-1].units, weighted[-1].name
    if x is not None:
        try:
            _trace(model, x, forward, d, leaves)
        except Exception:   # noqa: BLE001 - a model we cannot run on one input: registration order only
            pass
    if optimizer is not None:
        d.optimizer = type(optimizer).__name__
        g = optimizer.param_groups[0] if optimizer.param_groups else optimizer.defaults
        d.hyper = {"learning_rate": float(g.get("lr", 0.0))}
        for k in ("momentum", "weight_decay"):
            if g.get(k):
                d.hyper[k] = float(g[k])
        if g.get("betas"):
            d.hyper["beta_1"], d.hyper["beta_2"] = (float(b) for b in g["betas"])
    return d


def _trace(model, x, forward, d: ModelDesc, leaves) -> None:
    order: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(name):
        def h(mod, args, out):
            if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
                order.append((name, mod, args[0].detach(), out.detach()))
        return h

    ran_modules: list[nn.Module] = []
    seen_all = torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: ran_modules.append(m))
    try:
        out = forward(x, [(m, hook(n)) for n, m in leaves])
    finally:
        seen_all.remove()
    mine = {id(m) for m in model.modules()}
    d.unregistered = [type(m).__name__ for m in ran_modules
                      if id(m) not in mine and any(p.requires_grad for p in m.parameters(recurse=False))]
    if not isinstance(out, torch.Tensor) or not order:
        return
    ran = [(n, m, i, o) for n, m, i, o in order]
    weighted = [(k, r) for k, r in enumerate(ran) if isinstance(r[1], WEIGHTED)]
    # nothing nonlinear between two weighted layers: the second received exactly what the first produced
    for (k1, a), (k2, b) in zip(weighted, weighted[1:]):
        between = [r[1] for r in ran[k1 + 1:k2]]
        if any(type(m) in ACT_NAMES for m in between):
            continue
        if a[3].numel() == b[2].numel() and torch.equal(a[3].reshape(-1), b[2].reshape(-1)):
            d.linear_pairs.append((a[0], b[0]))
    # the output: the last module that ran, if it made the output; else read off the values
    last_name, last_mod, _, last_out = ran[-1]
    same = last_out.shape == out.shape and torch.equal(last_out, out.detach())
    if same and type(last_mod) in ACT_NAMES:
        d.output_activation = ACT_NAMES[type(last_mod)]
        d.output_layer = last_name
    elif same and isinstance(last_mod, WEIGHTED):
        d.output_activation, d.output_layer = "linear", last_name
    else:
        d.output_activation = infer_output_activation(out.detach().cpu().numpy())
    if weighted:
        d.output_units = int(out.shape[-1]) if out.dim() > 1 else 1
    # the hidden layers' activations as they ran (F.relu in forward included): the next thing after each
    acts, linear_firsts = {}, {p for p, _ in d.linear_pairs}
    for k, r in weighted[:-1]:
        nxt = ran[k + 1][1] if k + 1 < len(ran) else None
        acts[r[0]] = "linear" if r[0] in linear_firsts else ACT_NAMES.get(type(nxt), "functional")
    d.layers = [type(layer)(layer.name, layer.kind, layer.units, acts.get(layer.name, layer.activation), layer.cls)
                if layer.name in acts else layer for layer in d.layers]
