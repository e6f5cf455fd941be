"""The rule registry: every rule declares ids, roles and the probe quantities it reads
(which must be quantities the probes record), and "no-pathology" is derived from roles:
it stands for a level exactly when no rule with the role ``cause`` fired."""

import itertools

import pytest

from explain_helpers import SPEC, view
from scalelab._explain import CAUSE, ROLES, explain_views, rules
from scalelab.probes import PROBES


def test_every_rule_is_registered_with_ids_roles_rank_and_known_quantities():
    registered = rules()
    assert [r.rank for r in registered] == sorted({r.rank for r in registered})   # unique, in order
    names = {r.name for r in registered}
    assert {"rule_diverged", "rule_zero_gradient", "rule_class_collapse", "rule_dead_relu", "rule_curvature",
            "rule_first_layer_step", "rule_predicts_the_mean", "rule_batchnorm_train_eval_gap",
            "rule_no_pathology"} <= names
    for r in registered:
        assert r.ids and all(isinstance(i, str) and i for i in r.ids)
        assert set(r.ids.values()) <= set(ROLES)
        for probe, pattern in r.needs:
            assert issubclass(PROBES[probe.name], probe), f"{r.name}: {probe} is not a registered probe's records"
            assert pattern in probe.quantities, f"{r.name}: {pattern!r} is not a quantity of {probe.name}"
    ids = [i for r in registered for i in r.ids]
    assert len(ids) == len(set(ids))        # one rule per finding id
    assert registered[-1].ids == {"no-pathology": "note"}   # it reads what all the others found


# Synthetic levels, each making (at most) one rule fire against the healthy reference.
SHARES = {("logits", f"pred_share.{c}"): {50: [0.1, 0.1]} for c in range(10)}
HEALTHY = {**SHARES, ("zero_grad", "share"): {0: [0.0, 0.0], 50: [0.01, 0.0]},
           ("logits", "classes_for_95pct"): {50: [10, 9]}, ("logits", "top_class_share"): {50: [0.11, 0.12]},
           ("activations", "act0.dead_frac"): {50: [0.1, 0.1]}}
CASES = {
    "healthy": {},
    "zero-gradient": {("zero_grad", "share"): {0: [0.5, 0.6], 50: [0.5, 0.5]}},
    "class-collapse": {("logits", "classes_for_95pct"): {50: [1, 2]}, ("logits", "top_class_share"): {50: [0.9, 0.8]}},
    "dead-relu": {("activations", "act0.dead_frac"): {50: [0.6, 0.5]}},
    "flat-loss-surface": {("hessian", "max_eigenvalue"): {0: [0.0, 0.0], 50: [0.0, 0.0]}},
    "curvature": {("hessian", "max_eigenvalue"): {0: [1.0, 1.0], 50: [2.0, 2.0]}},   # a note: within limits
}


def levels(*names):
    ref = view({"case": "reference"}, SPEC, HEALTHY, final_loss=0.1)
    return ref, [view({"case": n}, SPEC, {**HEALTHY, **CASES[n]}, final_loss=0.5) for n in names]


@pytest.mark.parametrize("names", [c for k in (1, 2) for c in itertools.combinations(CASES, k)])
def test_no_pathology_exactly_when_no_cause_fired(names):
    ref, targets = levels(*names)
    for t in targets:
        found = explain_views([ref, *targets], [t])
        others = [f for f in found if f.id != "no-pathology"]
        assert all(f.role in ROLES for f in found)
        cause = any(f.role == CAUSE for f in others)
        assert ("no-pathology" in [f.id for f in found]) == (not cause), [(f.id, f.role) for f in found]
        expected = t.level["case"]
        if expected != "healthy":
            assert expected in [f.id for f in others]


def test_roles_come_from_the_registry_or_the_rule():
    ref, (dead, curv) = levels("dead-relu", "curvature")
    by_id = {f.id: f for f in explain_views([ref, dead, curv], [dead])}
    assert by_id["dead-relu"].role == CAUSE and "no-pathology" not in by_id
    by_id = {f.id: f for f in explain_views([ref, dead, curv], [curv])}
    assert by_id["curvature"].role == "note" and by_id["no-pathology"].role == "note"
    # a level with a cause and dead units that are *not* elevated: those are a note
    ref, (zero,) = levels("zero-gradient")
    fs = explain_views([ref, zero], [zero])
    assert [(f.id, f.role) for f in fs] == [("zero-gradient", CAUSE), ("dead-relu", "note")]
    assert all(set(f.as_dict()) == {"id", "level", "evidence", "text"} for f in fs)
