"""The class-collapse and dead-relu rules, alone and together in explain_views (where
"no-pathology" stands only for the level with no cause)."""

import pytest

from explain_helpers import SPEC, view
from scalelab._explain import explain_views
from scalelab._explain._class_collapse import rule_class_collapse
from scalelab._explain._dead_relu import rule_dead_relu


def test_collapse_and_dead_relu_rules():
    shares = {("logits", f"pred_share.{c}"): {50: [0.1, 0.1, 0.1]} for c in range(10)}
    ref = view({"s": "a"}, SPEC, {**shares, ("logits", "classes_for_95pct"): {50: [10, 10, 9]},
                                  ("logits", "top_class_share"): {50: [0.11, 0.1, 0.12]},
                                  ("activations", "act0.dead_frac"): {50: [0.1, 0.1, 0.1]}})
    bad = view({"s": "b"}, SPEC, {**shares, ("logits", "classes_for_95pct"): {50: [1, 2, 6]},
                                  ("logits", "top_class_share"): {50: [0.99, 0.7, 0.3]},
                                  ("activations", "act0.dead_frac"): {50: [0.5, 0.4, 0.45]}})
    (c,) = rule_class_collapse(bad, ref)
    assert c.evidence["seeds_collapsed"] == 2 and "2 of 3 seeds" in c.text
    (d,) = rule_dead_relu(bad, ref)
    assert d.evidence["elevated"] and d.evidence["dead_fraction"] == pytest.approx(0.45)
    assert rule_dead_relu(ref, bad) == [] or not rule_dead_relu(ref, bad)[0].evidence["elevated"]
    fs = explain_views([ref, bad])
    assert [f.id for f in fs if f.level == {"s": "a"}] == ["no-pathology"]
    assert {f.id for f in fs if f.level == {"s": "b"}} == {"class-collapse", "dead-relu"}
