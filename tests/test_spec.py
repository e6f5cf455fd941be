"""Spec validation: one-line errors naming the key, profiles, the grid."""

import pytest

from scalelab import SpecError, StudySpec, builtin_spec, builtin_studies, expand, resolve
from scalelab._spec import load_spec, parse_spec


def err(d) -> str:
    with pytest.raises(SpecError) as e:
        parse_spec({"name": "x", **d})
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_unknown_key_names_path_and_allowed_keys():
    msg = err({"optim": {"lrr": 0.1}})
    assert "unknown key 'optim.lrr'" in msg and "lr" in msg and "weight_decay" in msg


def test_unknown_top_level_key():
    assert "unknown key 'epochs'" in err({"epochs": 3})


def test_wrong_type():
    msg = err({"train": {"epochs": "five"}})
    assert msg.startswith("train.epochs = 'five'") and "integer" in msg


def test_negative_lr():
    msg = err({"optim": {"lr": -0.1}})
    assert msg.startswith("optim.lr = -0.1") and "greater than 0" in msg


def test_bad_choice_lists_allowed():
    msg = err({"optim": {"name": "rmsprop"}})
    assert "optim.name" in msg and "'adam'" in msg and "'sgd'" in msg


def test_fractions_are_numbers():
    spec = parse_spec({"name": "x", "input": {"transform": "scale", "scale": "1/255"}})
    assert spec.input.scale == pytest.approx(1 / 255, rel=1e-15)
    assert "not-a-number" in err({"input": {"scale": "not-a-number"}}) or "fraction" in err({"input": {"scale": "x/y"}})


def test_grid_key_must_exist_and_values_must_validate():
    assert "grid key 'input.scal' is not a spec key" in err({"grid": {"input.scal": [1]}})
    msg = err({"grid": {"optim.lr": [0.1, -1]}})
    assert "grid.optim.lr value -1" in msg and "greater than 0" in msg


def test_per_layer_lists_must_match_layers():
    spec = parse_spec({"name": "x", "model": {"hidden": [8, 8]}, "optim": {"lr_mult": [1.0, 2.0]}})
    with pytest.raises(SpecError, match="lr_mult has 2 values but the model has 3 dense layers"):
        resolve(spec)


def test_profiles_fill_defaults():
    k = resolve(parse_spec({"name": "x", "profile": "keras"}))
    assert (k.model.init, k.loss.from_logits, k.loss.clip, k.optim.eps, k.optim.eps_mode) == \
        ("glorot_uniform", False, 1e-7, 1e-7, "keras")
    t = resolve(parse_spec({"name": "x", "profile": "torch"}))
    assert (t.model.init, t.loss.from_logits, t.optim.eps, t.optim.eps_mode) == ("torch_default", True, 1e-8, "torch")
    kl = resolve(parse_spec({"name": "x", "profile": "keras-logits"}))
    assert kl.loss.from_logits is True and kl.optim.eps == 1e-7
    # an explicit value beats the profile
    assert resolve(parse_spec({"name": "x", "optim": {"eps": 1e-3}})).optim.eps == 1e-3


def test_grid_times_seeds():
    spec = parse_spec({"name": "x", "seeds": 3, "grid": {"input.scale": ["1/255", 1], "optim.lr": [1e-3, 1e-2]}})
    trials = expand(spec)
    assert len(trials) == 12 and len({t.key for t in trials}) == 12
    assert {t.spec["optim"]["lr"] for t in trials} == {1e-3, 1e-2}
    assert trials[0].level == {"input.scale": "1/255", "optim.lr": 1e-3}


def test_same_spec_same_keys():
    a = expand(parse_spec({"name": "x", "seeds": [3, 4]}))
    b = expand(StudySpec(name="x", seeds=[3, 4]))
    assert [t.key for t in a] == [t.key for t in b]


def test_builtin_studies_parse():
    assert "input-scaling" in builtin_studies()
    for name in builtin_studies():
        spec = builtin_spec(name)
        assert expand(spec)


def test_input_scaling_is_the_seed_experiment():
    s = builtin_spec("input-scaling")
    trials = expand(s)
    assert len(trials) == 15
    r = trials[0].spec
    assert r["profile"] == "keras" and r["model"]["hidden"] == [128] and r["train"]["batch_size"] == 32
    assert r["train"]["epochs"] == 5 and r["data"]["validation"] == 0
    assert sorted({t.spec["input"]["scale"] for t in trials}) == pytest.approx([1e-3, 1 / 255, 1.0])


def test_toml_file_errors(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\n[optim]\nlr = -1\n')
    with pytest.raises(SpecError, match=r"s\.toml: optim\.lr = -1"):
        load_spec(p)
    p.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(p)


def test_set_grid_to_a_non_table_is_one_spec_error():
    # found by the --set fuzzer: pruning level descriptions met a grid that is not a table
    from scalelab._study import with_overrides

    with pytest.raises(SpecError):
        with_overrides(builtin_spec("input-scaling"), ["grid=00"])


def test_a_huge_seed_count_is_one_spec_error_not_a_list_in_memory():
    # found by the fuzzer: seeds = 2**40 was turned into a list of 2**40 seeds (out of memory)
    from scalelab._spec import count_trials

    with pytest.raises(SpecError, match="seeds = 1099511627776: must be less than or equal to 1000000"):
        parse_spec({"name": "x", "seeds": 2 ** 40})
    assert count_trials(parse_spec({"name": "x", "seeds": 1_000_000, "grid": {"optim.lr": [0.1, 0.2]}})) == 2_000_000
