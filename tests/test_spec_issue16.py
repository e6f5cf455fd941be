"""Spec features the explain rules and users need (issue 16): constant bias initialisation,
training length in steps, scikit-learn sets without a held-out split, probes on fixed rows,
arm names with any characters."""

import tomllib

import numpy as np
import pytest
import torch

from scalelab import StackedGroup, expand
from scalelab.data import DataError
from scalelab._spec import SpecError, parse_spec
from scalelab.data import trial_split
from scalelab.engine import train_group
from scalelab.probes import make_probe_set

BASE = {"name": "s", "seeds": [0, 1], "data": {"dataset": "digits"}, "model": {"hidden": [8]},
        "train": {"batch_size": 32, "epochs": 1, "compile": False}}


def spec(**over):
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    return parse_spec(d)


def test_bias_init_constant_or_per_layer():
    g = StackedGroup(expand(spec(model={"bias_init": -3.0})), None)
    assert torch.all(g.params["dense0.b"] == -3.0) and torch.all(g.params["dense1.b"] == -3.0)
    g = StackedGroup(expand(spec(model={"bias_init": [-3, "zeros"]})), None)       # an int is a number too
    assert torch.all(g.params["dense0.b"] == -3.0) and torch.all(g.params["dense1.b"] == 0.0)
    # the kernels are drawn exactly as with zero biases (the bias draws no random numbers)
    plain = StackedGroup(expand(spec()), None)
    assert torch.equal(g.params["dense0.W"], plain.params["dense0.W"])
    with pytest.raises(SpecError, match=r"model.bias_init has 3 values but the model has 2 dense layers"):
        expand(spec(model={"bias_init": [0.0, 0.0, 0.0]}))
    with pytest.raises(SpecError, match="bias_init"):
        spec(model={"bias_init": "ones"})


def test_train_steps_cuts_the_last_epoch_and_keeps_the_first_bit_for_bit():
    by_epochs = train_group(expand(spec()))                       # 1437 rows / 32: 45 steps per epoch
    by_steps = train_group(expand(spec(train={"steps": 50})))
    for a, b in zip(by_epochs, by_steps):
        assert len(b.epochs) == 2 and a.epochs[0].keys() == b.epochs[0].keys()
        # the first epoch is the same computation, bit for bit (NaN: no validation set on both sides)
        assert all(a.epochs[0][k] == b.epochs[0][k] or (np.isnan(a.epochs[0][k]) and np.isnan(b.epochs[0][k]))
                   for k in a.epochs[0])
    g = StackedGroup(expand(spec(train={"steps": 50})), None)
    assert g.total_steps == 50 and g.epochs == 2
    # probes see the cut run's length: the last probed step is the trained model at step 50
    res = train_group(expand(spec(train={"steps": 50}, probes={"preset": "cheap"})),
                      probes=make_probe_set(expand(spec(train={"steps": 50}, probes={"preset": "cheap"}))))
    assert max(step for step, *_ in res[0].probes) == 50
    with pytest.raises(SpecError, match="train.steps"):
        spec(train={"steps": 0})


def test_scikit_learn_set_without_a_holdout_trains_and_evaluates_on_all_rows():
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    (t,) = expand(spec(seeds=[0], data={"dataset": "breast_cancer", "holdout": False}))
    _, sp = trial_split(t.spec)
    assert sp.X_train.shape == X.shape and np.array_equal(sp.X_test, X) and np.array_equal(sp.X_train, X)
    (h,) = expand(spec(seeds=[0], data={"dataset": "breast_cancer"}))
    assert len(trial_split(h.spec)[1].X_train) == 455                # the default split is untouched
    (bad,) = expand(spec(seeds=[0], data={"dataset": "sin-plus-y", "holdout": False}))
    with pytest.raises(DataError, match="data.holdout = false .* is for the scikit-learn sets"):
        trial_split(bad.spec)


def test_probes_on_the_first_rows_or_random_rows():
    trials = expand(spec(probes={"preset": "cheap", "rows": "first:100"}))
    ps = make_probe_set(trials)
    g = StackedGroup(trials, None)
    from scalelab.engine import StepView

    ps.on_group_start(StepView(g))
    assert ps.probe_rows.tolist() == list(range(100))
    ps = make_probe_set(expand(spec(probes={"preset": "cheap", "batch": 64})))
    ps.on_group_start(StepView(g))
    rows = ps.probe_rows.tolist()
    assert len(rows) == 64 and rows != list(range(64)) and rows == sorted(set(rows))
    with pytest.raises(SpecError, match="probes.rows = 'last:5': probe rows are 'random' or 'first:N'"):
        spec(probes={"rows": "last:5"})


def test_arm_names_take_any_characters_and_a_dotted_toml_name_says_how_to_quote():
    s = parse_spec(tomllib.loads('name = "a"\n[arms."lr=0.1 / SGD"]\n"optim.lr" = 0.1\n[arms."B*"]\n'
                                 'optim.lr = 0.2\n[descriptions]\n"arm=lr=0.1 / SGD" = "plain SGD"\n'))
    levels = {t.level["arm"]: t.spec.optim.lr for t in expand(s)}
    assert levels == {"lr=0.1 / SGD": 0.1, "B*": 0.2}   # an unquoted dotted key inside an arm is that key
    with pytest.raises(SpecError) as e:
        parse_spec(tomllib.loads('name = "a"\n[arms.B.star]\n"optim.lr" = 0.1\n'))
    msg = str(e.value)
    assert "\n" not in msg and "split the arm name 'B.star' at the dot" in msg and '[arms."B.star"]' in msg
