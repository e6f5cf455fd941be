"""The optimizer registry: every family's fused kernel equals its chain for every option,
its input-scale rule equals the hand-derived table, and every spec optimizer has a family."""

import typing

import numpy as np
import pytest
import torch

from scalelab import optim
from scalelab._equivalence import parametrization
from scalelab._spec import OptimSpec

M = 3
# family -> options: (label, optimizer name, nesterov, hyperparameter overrides)
OPTIONS = {
    "sgd": [("plain", "sgd", False, {}), ("weight decay", "sgd", False, {"wd": 0.01})],
    "momentum": [("heavy ball", "momentum", False, {"wd": 0.01}), ("nesterov", "momentum", True, {"wd": 0.01}),
                 ("no decay", "momentum", False, {})],
    "adam": [("torch eps", "adam", False, {"keras": 0.0, "eps": 1e-8}),
             ("keras eps", "adam", False, {"keras": 1.0, "eps": 1e-7}),
             ("adamw", "adamw", False, {"keras": 0.0, "eps": 1e-8, "wd": 0.01})],
    # row-sparse families: their dense parameters take these kernels (tables: test_sparse_updates)
    "sparse_sgd": [("plain", "sparse_sgd", False, {})],
    "lazy_adam": [("keras eps", "lazy_adam", False, {"keras": 1.0, "eps": 1e-7}),
                  ("torch eps", "sparse_adam", False, {"keras": 0.0, "eps": 1e-8})],
}
CASES = [(fam, *opt) for fam, opts in OPTIONS.items() for opt in opts]


def per_model_hp(names, over):
    """(M, 1, 1) tensors with a different value per model; lr, eps and wd also per parameter
    (per-layer multipliers), the betas per model only, as group_hyperparameters builds them."""
    rng = np.random.default_rng(3)
    base = {**dict(lr=0.01, wd=0.0, b1=0.9, b2=0.999, eps=1e-8, keras=0.0, mom=0.9), **over}
    per_model = {k: np.ones(M) if k == "keras" else rng.uniform(0.5, 1.0, size=M) for k in base}
    per_layer = lambda k: rng.uniform(0.5, 2.0) if k in ("lr", "eps", "wd") else 1.0  # noqa: E731
    return {k: {n: torch.tensor(v * per_model[k] * per_layer(k), dtype=torch.float64).view(M, 1, 1) for n in names}
            for k, v in base.items()}


def test_every_family_has_a_row_in_the_table():
    assert set(OPTIONS) == set(optim.FAMILIES)
    for fam, opts in OPTIONS.items():
        assert {o[1] for o in opts} == set(optim.FAMILIES[fam].optimizers)


@pytest.mark.parametrize("family,label,name,nesterov,over", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_fused_kernel_equals_the_family_chain(family, label, name, nesterov, over):
    fam = optim.family_of(name)
    assert fam.name == family
    rng = np.random.default_rng(0)
    shapes = {"W": (M, 5, 4), "b": (M, 1, 4)}
    p0 = {k: torch.tensor(rng.normal(size=s)) for k, s in shapes.items()}
    hp = per_model_hp(list(shapes), over)
    chain = fam.chain(hp, nesterov)
    params = {k: v.clone() for k, v in p0.items()}
    fused_params = {k: v.clone() for k, v in p0.items()}
    fused = optim.FusedOptimizer(name, fused_params, hp, nesterov=nesterov, compile=False)
    assert fused.family == family and not fused.compiled
    state = chain.init(params)
    for _ in range(6):
        grads = {k: torch.tensor(rng.normal(size=s) * 1e-2) for k, s in shapes.items()}
        upd, state = chain.update(grads, state, params)
        params = optim.apply_updates(params, upd)
        fused.step(fused_params, grads)
    for k in shapes:
        assert not torch.equal(fused_params[k], p0[k])
        torch.testing.assert_close(fused_params[k], params[k], rtol=1e-12, atol=1e-14)
    for moment in fam.moments:  # the state is reachable by name (the probes read opt.v)
        assert len(getattr(fused, moment)) == len(shapes)


HAND = {  # multipliers of the first kernel's (lr, eps, l2, wd) for inputs × c
    "sgd": lambda c: (1 / c ** 2, 1.0, c ** 2, c ** 2),
    "momentum": lambda c: (1 / c ** 2, 1.0, c ** 2, c ** 2),
    "adam": lambda c: (1 / c, c, c ** 2, c),
    "adamw": lambda c: (1 / c, c, c ** 2, c),
}


@pytest.mark.parametrize("c", [255.0, 1 / 255, 256.0, 3.7, 1.0])
@pytest.mark.parametrize("name", sorted(HAND))
def test_input_scale_rule_equals_the_hand_derived_table(name, c):
    r = optim.family_of(name).input_scale(c)
    assert (r.lr, r.eps, r.l2, r.wd) == pytest.approx(HAND[name](c), rel=1e-14)
    p = parametrization(c, name)
    assert (p.lr_mult, p.eps_mult, p.l2_mult, p.wd_mult) == (r.lr, r.eps, r.l2, r.wd)
    assert p.init_scale == pytest.approx(1 / c, rel=1e-15)


def test_every_spec_optimizer_resolves_to_a_family():
    names = typing.get_args(OptimSpec.model_fields["name"].annotation)
    assert names and set(names) == set(optim.optimizer_names())
    for n in names:
        assert n in optim.family_of(n).optimizers


def test_group_family_and_unknown_names():
    assert optim.group_family(["sgd", "sgd"]).name == "sgd"
    assert optim.group_family(["sgd", "momentum"]).name == "momentum"  # sgd = momentum 0
    assert optim.group_family(["adamw", "adam"]).name == "adam"
    assert optim.stack_key("sgd") == optim.stack_key("momentum") != optim.stack_key("adam")
    with pytest.raises(ValueError, match="cannot train in one stacked group"):
        optim.group_family(["sgd", "adam"])
    with pytest.raises(ValueError, match=r"optimizer 'rmsprop': expected sgd, momentum, adam, adamw, .* or sparse_adam"):
        optim.family_of("rmsprop")
    with pytest.raises(ValueError, match="registered already"):
        optim.register(optim.FAMILIES["adam"])


def test_cli_equivalence_offers_every_optimizer():
    import argparse

    from scalelab._cli_parser import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    opt = next(a for a in sub.choices["equivalence"]._actions if a.dest == "optimizer")
    # the equivalence check trains dense models: the row-sparse families are the dense ones there
    assert tuple(opt.choices) == tuple(n for n in optim.optimizer_names() if optim.family_of(n).row_kernel is None)
