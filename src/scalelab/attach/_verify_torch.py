"""Verifying a watched PyTorch run: the user's model repeated on copies (``copy.deepcopy`` of
the model and loss module, a fresh optimizer of the same class with the same hyperparameters),
on the batches the watcher saw, for the same epochs and batch size, once as it was and once per
cause with the cause's remedy, across seeds (issue 32).

The copies start from the user's own initial weights (kept when the watcher started): a seed is
a batch order, so a planted initialization (zeros, a dead bias) is repeated as it was; the
"default initialization" remedy re-initializes with each layer's own ``reset_parameters`` under
the seed. The loop repeated is the standard step (zero_grad, forward, loss, backward, step):
a bug in the user's own loop is not repeated (such causes have no remedy to run here). The
user's model, loss, optimizer and tensors are never touched; torch's random state is restored.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn

from ._verify_watched import (TARGETS_CHANGED, changed_data, data_facts, final_scores, is_classification, remedies,
                              store_verification, summary)

_ACTIVATIONS = (nn.Softmax, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LogSoftmax)


def _copy(model: nn.Module, init_state: dict, remedy, desc: dict, seed: int) -> nn.Module:
    m = copy.deepcopy(model)
    m.load_state_dict(init_state)
    what = remedy.change.get("what") if remedy is not None else None
    if what == "default_init":
        torch.manual_seed(seed)
        for mod in m.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    if what == "unfreeze":
        for p in m.parameters():
            p.requires_grad_(True)
    if isinstance(m, nn.Sequential) and what == "output_for_loss":
        mods = list(m)
        if "NLL" in desc.get("loss_call", "") and not isinstance(mods[-1], nn.LogSoftmax):
            m = nn.Sequential(*[mod for mod in mods if not isinstance(mod, nn.Softmax)], nn.LogSoftmax(dim=1))
        elif isinstance(mods[-1], _ACTIVATIONS):
            m = nn.Sequential(*mods[:-1])
    if isinstance(m, nn.Sequential) and what == "hidden_relu":
        mods, out = list(m), []
        lin = [i for i, mod in enumerate(mods) if isinstance(mod, nn.Linear)]
        for i, mod in enumerate(mods):
            if isinstance(mod, (nn.Sigmoid, nn.Tanh)) and i < lin[-1]:
                mod = nn.ReLU()
            out.append(mod)
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if isinstance(mod, nn.Linear) and i != lin[-1] and not isinstance(nxt, _ACTIVATIONS):
                out.append(nn.ReLU())
        m = nn.Sequential(*out)
    return m


def _optimizer(optimizer, params, remedy):
    hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params" and k in optimizer.defaults}
    if remedy is not None and remedy.change.get("what") == "lr":
        hyper["lr"] = float(remedy.change["lr"])
    return type(optimizer)(params, **hyper)


def run_arm(model, loss_fn, optimizer, init_state, x, y, remedy, seeds, epochs, batch_size, desc,
            shuffle=True) -> list[dict]:
    xa, ya, undo = changed_data(remedy, x, y) if remedy is not None else (x.copy(), y.copy(), {})
    if remedy is not None and remedy.change.get("what") == "shuffle":
        shuffle = True
    xt = torch.as_tensor(np.ascontiguousarray(xa)).float() if xa.dtype.kind == "f" else torch.as_tensor(xa)
    yt = torch.as_tensor(np.ascontiguousarray(ya))
    if ya.dtype.kind == "f" and yt.dtype == torch.float64:
        yt = yt.float()
    out = []
    for s in seeds:
        t0 = time.perf_counter()
        m = _copy(model, init_state, remedy, desc, s)
        m.train()
        lf = copy.deepcopy(loss_fn) if isinstance(loss_fn, nn.Module) else loss_fn
        opt = _optimizer(optimizer, [p for p in m.parameters() if p.requires_grad], remedy)
        g = torch.Generator().manual_seed(s)
        rows, n = [], len(xt)
        for e in range(epochs):
            order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
            total = 0.0
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                opt.zero_grad()
                loss = lf(m(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            rows.append({"epoch": e + 1, "train_loss": total / n})
        with torch.no_grad():
            final_scores(rows[-1], m(xt).detach().cpu().numpy(), y, undo, desc)
        finite = all(math.isfinite(r["train_loss"]) for r in rows)
        out.append(dict(seed=s, epochs=rows, wall_s=time.perf_counter() - t0, status="done" if finite else "diverged",
                        diverged_step=None if finite else 0))
    return out


def verify_torch(model, loss_fn, optimizer, init_state, x, y, findings, *, study: str, db: str, level: dict,
                 seeds: int, epochs: int, batch_size: int, desc: dict | None, verbose: bool = True) -> list:
    desc = desc or {}
    x, y = np.asarray(x), np.asarray(y)
    todo, skipped = remedies(findings, data_facts(x, y, is_classification(y, desc)), desc)
    if not isinstance(model, nn.Sequential):   # a model class of the user's: its layers cannot be changed on a copy
        skipped += [(f, "the model is not an nn.Sequential: scalelab cannot change its layers on a copy")
                    for f, r in todo if r.change.get("what") in ("output_for_loss", "hidden_relu")]
        todo = [(f, r) for f, r in todo if r.change.get("what") not in ("output_for_loss", "hidden_relu")]
    if not todo:
        if verbose:
            print(f"scalelab: verify {study}: no cause with a remedy to run"
                  + "".join(f"\n- [{f.id}] not verified: {why}" for f, why in skipped))
        return []
    state, t0 = torch.get_rng_state(), time.perf_counter()
    try:
        sorted_labels = any(f.id == "sorted-labels" for f in findings)
        seed_list = list(range(seeds))
        before = run_arm(model, loss_fn, optimizer, init_state, x, y, None, seed_list, epochs, batch_size, desc,
                         shuffle=not sorted_labels)
        arms = [dict(finding=f.id, remedy=r.words, change=r.change, before=before,
                     after=run_arm(model, loss_fn, optimizer, init_state, x, y, r, seed_list, epochs, batch_size, desc,
                                   shuffle=not sorted_labels),
                     loss_changed=r.change.get("what") in TARGETS_CHANGED)
                for f, r in todo]
    finally:
        torch.set_rng_state(state)
    store_verification(db, study, level, "pytorch", arms, time.perf_counter() - t0)
    if verbose:
        print(summary(db, study) + "".join(f"\n- [{f.id}] not verified: {why}" for f, why in skipped))
    return todo
