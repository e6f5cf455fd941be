"""A stacked group's state between two epochs, captured and restored exactly.

Everything the next epoch reads: parameters, the optimizer's moments and step counter,
BatchNorm buffers, each model's shuffle stream, the global step, the history and probe
records so far and the first non-finite step. Hooks are rebuilt by ``on_group_start`` on
resume (the probe set derives its schedule and rows from the spec), so they need no state.

The store writes a state as bytes (``scalelab._store._checkpoint_blob``: an ``.npz``, no pickle).
"""

from __future__ import annotations

import torch

from .._store._checkpoint_blob import FORMAT



def capture(g, view, history: list[list[dict]], first_bad: torch.Tensor, epoch: int, wall_s: float) -> dict:
    """The state after ``epoch`` finished epochs: ``{"tensors": {name: ndarray}, "meta": {...}}``."""
    tensors = {f"param/{k}": v.detach().cpu().numpy() for k, v in g.params.items()}
    tensors |= {f"buffer/{k}": v.detach().cpu().numpy() for k, v in g.buffers.items()}
    for m, per_param in g.opt.moments.items():
        tensors |= {f"moment/{m}/{n}": t.detach().cpu().numpy() for n, t in zip(g.opt.names, per_param)}
    tensors["first_bad"] = first_bad.cpu().numpy()
    meta = dict(format=FORMAT, epoch=epoch, step=g.step, opt_t=g.opt.t, wall_s=wall_s,
                trial_keys=[t.key for t in g.trials], history=history,
                shuffle=[rng.bit_generator.state for rng in g.shuffle_rngs],
                records=[list(map(list, view.records(m))) for m in range(g.M)])
    return dict(tensors=tensors, meta=meta)


def restore(g, view, state: dict) -> tuple[list[list[dict]], torch.Tensor, int, float]:
    """Put ``state`` into a freshly built group (same trials, same order); returns
    (history, first_bad, epochs done, wall seconds so far)."""
    meta, arrays = state["meta"], state["tensors"]
    if meta["trial_keys"] != [t.key for t in g.trials]:
        raise ValueError("this checkpoint belongs to another group of trials; it cannot be resumed here")
    with torch.no_grad():
        for k, v in g.params.items():
            v.copy_(torch.as_tensor(arrays[f"param/{k}"]))   # in place: keeps the (transposed) layout
        for k, v in g.buffers.items():
            v.copy_(torch.as_tensor(arrays[f"buffer/{k}"]))
        for m, per_param in g.opt.moments.items():
            for n, t in zip(g.opt.names, per_param):
                t.copy_(torch.as_tensor(arrays[f"moment/{m}/{n}"]))
    g.opt.t, g.step = meta["opt_t"], meta["step"]
    for rng, s in zip(g.shuffle_rngs, meta["shuffle"]):
        rng.bit_generator.state = s
    for m, recs in enumerate(meta["records"]):
        view._records[m][:] = [tuple(r) for r in recs]
    first_bad = torch.as_tensor(arrays["first_bad"], device=g.device)
    return meta["history"], first_bad, meta["epoch"], meta["wall_s"]
