"""Levels ranked by what they share (issue 33): best on validation, never by each level's
own loss when the levels minimize different ones; views planted by hand on both sides."""

import math

import numpy as np

from scalelab._explain import LevelView, reference
from scalelab._explain._run import shared_metric
from scalelab._spec import parse_spec


def view(loss="crossentropy", train_loss=0.1, **final):
    d = {"name": "v", "data": {"dataset": "digits"}, "loss": {"name": loss}}
    spec = parse_spec(d)
    from scalelab._spec import expand

    v = LevelView(level={"name": f"{loss}-{train_loss}"}, spec=expand(spec)[0].spec, n_seeds=2)
    v.final = {k: np.asarray(x, dtype=float) for k, x in final.items()}
    v.final["train_loss"] = np.array([train_loss] * 2)
    v.final_train_loss = train_loss
    v.final_test_acc = float(np.mean(final.get("test_acc", [math.nan])))
    return v


def test_the_overfitting_level_is_not_best_when_validation_says_otherwise():
    overfit = view(train_loss=0.01, val_acc=[0.80, 0.82], test_acc=[0.8, 0.8])
    sound = view(train_loss=0.20, val_acc=[0.90, 0.91], test_acc=[0.9, 0.9])
    assert shared_metric([overfit, sound])[0] == "validation accuracy"
    assert reference([overfit, sound]) is sound
    sound.final["val_acc"] = np.array([0.70, 0.71])
    assert reference([overfit, sound]) is overfit


def test_without_validation_one_shared_loss_ranks_by_it_and_different_losses_by_test_accuracy():
    a = view(train_loss=0.05, test_acc=[0.7, 0.7])
    b = view(train_loss=0.30, test_acc=[0.9, 0.9])
    assert shared_metric([a, b])[0] == "final train loss" and reference([a, b]) is a
    # keras-logits vs keras: the same name here, so a loss that differs by name is planted
    c = view(loss="mse", train_loss=0.01, test_acc=[0.6, 0.6])
    assert shared_metric([b, c])[0] == "test accuracy" and reference([b, c]) is b


def test_regression_ranks_by_validation_r2_in_the_targets_units():
    low = view(loss="mse", train_loss=0.001, val_r2=[0.2, 0.3], test_r2=[0.9, 0.9])
    high = view(loss="mae", train_loss=5.0, val_r2=[0.8, 0.7], test_r2=[0.1, 0.1])
    assert shared_metric([low, high])[0] == "validation R²" and reference([low, high]) is high
