"""Hypothesis fuzzes the spec parser, the trial expansion and the CLI's --set path: any
input is either a valid spec or a SpecError (one line); every other exception is a bug."""

import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scalelab._spec import SpecError, count_trials, expand, parse_spec, trial_at
from scalelab._study import with_overrides

KEYS = ["name", "seeds", "profile", "question", "data.dataset", "data.validation", "data.test_fraction",
        "input.transform", "input.scale", "input.feature_range", "input.equivalent_to", "target.transform",
        "model.hidden", "model.activation", "model.init", "model.init_scale", "model.kind", "loss.name",
        "loss.clip", "optim.name", "optim.lr", "optim.eps", "optim.lr_mult", "optim.momentum", "train.epochs",
        "train.batch_size", "train.device", "train.dtype", "probes.preset", "optim.lr.x", "a..b", "grid", "arms"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
                    st.text(max_size=12),
                    st.sampled_from(["1e309", "-1e309", "1/0", "1/255", "inf", "nan", "relu", "adam", "cpu", "tpu",
                                     "digits", "iris", "minmax", "keras", "0x10", "", " "]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)
# values that some key accepts: about half the specs then reach the expansion
plausible = st.sampled_from([0.001, 0.1, "1/255", 1, 2, 16, [16], [8, 4], "relu", "tanh", "adam", "sgd", "minmax",
                             "standard", [0, 1], [-1, 1], "cpu", "float64", "cheap", 0.5, "digits", "keras", "torch",
                             "glorot_uniform", "he_normal", "mlp", "categorical_crossentropy", 1e-7, True])
values = st.one_of(plausible, plausible, values)
N = 2000   # examples per property (the issue asks for at least 2,000 in CI)


def spec_dict(pairs, grid, seeds):
    d = {"name": "fuzz", "seeds": seeds, "data": {"dataset": "iris"}}
    for key, v in pairs:
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node[parts[-1]] = v
    if grid is not None:
        d["grid"] = grid
    return d


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=4),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), st.lists(values, min_size=1, max_size=3),
                                            max_size=2)),
       st.one_of(st.integers(1, 3), st.integers(1, 3), st.integers(-3, 4), st.lists(st.integers(-1, 2 ** 64), max_size=3),
                 values))
def test_parse_and_expand_raise_only_spec_errors(pairs, grid, seeds):
    try:
        spec = parse_spec(spec_dict(pairs, grid, seeds))
        n = count_trials(spec)
        event("valid spec")   # --hypothesis-show-statistics: how many reached the expansion
        if n <= 64:
            trials = expand(spec)
            assert len(trials) == len({t.key for t in trials}) or len(trials) == n
    except SpecError as e:
        assert "\n" not in str(e)


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.text(max_size=16)), min_size=1, max_size=3))
def test_cli_set_raises_only_spec_errors(items):
    base = parse_spec({"name": "fuzz", "seeds": 1, "data": {"dataset": "iris"}})
    try:
        spec = with_overrides(base, [f"{k}={v}" for k, v in items])
        assert math.isfinite(spec.optim.lr)
    except SpecError as e:
        assert "\n" not in str(e)


VALID = {"optim.lr": [0.001, 0.1, "1/255", 1e-7], "input.scale": [1, "1/255", 0.5, 16], "model.hidden": [[16], [8, 4]],
         "optim.name": ["adam", "sgd", "momentum", "adamw"], "input.transform": ["minmax", "standard", "scale", "none"],
         "model.activation": ["relu", "tanh", "sigmoid"], "train.batch_size": [1, 16, 64],
         "input.feature_range": [[0, 1], [-1, 1]], "model.init": ["glorot_uniform", "he_normal", "lecun_uniform"]}


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.data(), st.lists(st.sampled_from(sorted(VALID)), max_size=3, unique=True), st.integers(1, 3))
def test_grid_expansion_yields_count_trials_or_a_spec_error(data, keys, seeds):
    """Mostly valid grids (a value of another key now and then): every spec that parses
    expands into exactly count_trials trials."""
    grid = {k: data.draw(st.lists(st.one_of(st.sampled_from(VALID[k]), st.sampled_from(VALID[k]), plausible),
                                  min_size=1, max_size=3, unique_by=repr)) for k in keys}
    try:
        spec = parse_spec({"name": "fuzz", "seeds": seeds, "data": {"dataset": "iris"}, "grid": grid})
        event("valid spec")
        trials = expand(spec)
        assert len(trials) == count_trials(spec) == seeds * math.prod(len(v) for v in grid.values())
        i = data.draw(st.integers(0, len(trials) - 1))
        assert trial_at(spec, i) == trials[i]   # a work unit rebuilds its trials by position
    except SpecError as e:
        assert "\n" not in str(e)
