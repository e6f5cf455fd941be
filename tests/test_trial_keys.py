"""Trial keys stay stable across versions: a field added later leaves the key alone while it
holds its default, and changes it when set."""

from scalelab._spec import expand, parse_spec
from scalelab._spec._key import KEYED_FIELDS, trial_key
from scalelab._spec._sections import TrialSpec

# written by scalelab at commit 0108e55 (before the token-data, cross-validation and trajectory
# fields existed) for this spec and seeds 0 and 3: a store from then must keep its trials
_SPEC = {"name": "x", "data": {"dataset": "iris"}, "seeds": [0, 3]}
_KEYS_0108E55 = ["1d7e9d53d640b5244be9", "6cc73708c2dbb36793a8"]


def test_keys_written_by_an_earlier_release_still_match():
    assert [t.key for t in expand(parse_spec(_SPEC))] == _KEYS_0108E55


def test_the_key_from_a_stored_json_spec_equals_the_trials_key():
    import json
    t = expand(parse_spec(_SPEC))[1]
    assert trial_key(json.loads(t.spec.model_dump_json()), t.seed) == t.key


def test_a_new_field_set_away_from_its_default_changes_the_key():
    import json
    t = expand(parse_spec(_SPEC))[0]
    dumped = json.loads(t.spec.model_dump_json())
    new = [(s, f) for s, fields in KEYED_FIELDS.items() if fields is not None
           and TrialSpec.model_fields[s].get_default(call_default_factory=True) is not None   # optional: below
           for f in type(TrialSpec.model_fields[s].get_default(call_default_factory=True)).model_fields
           if f not in fields]
    assert new, "no field added since keys were introduced: this test has nothing to check"
    for section, field in new:
        changed = json.loads(json.dumps(dumped))
        changed[section][field] = ["not the default"]
        assert trial_key(changed, t.seed) != t.key, (section, field)
    old = json.loads(json.dumps(dumped))
    old["train"]["epochs"] += 1
    assert trial_key(old, t.seed) != t.key          # an old field still counts
    # an optional section (trajectory): its new field at the default leaves the key, set away changes it
    from scalelab._spec._trajectory import TrajectorySpec

    with_section = json.loads(json.dumps(dumped))
    with_section["trajectory"] = {f: v for f, v in json.loads(TrajectorySpec().model_dump_json()).items()
                                  if f in KEYED_FIELDS["trajectory"]}
    at_default = json.loads(json.dumps(with_section))
    at_default["trajectory"]["infer_range"] = True
    away = json.loads(json.dumps(with_section))
    away["trajectory"]["infer_range"] = False
    assert trial_key(at_default, t.seed) == trial_key(with_section, t.seed) != trial_key(away, t.seed)
