"""One per-level view for the report, the HTML report and explain: the same label for
the same level everywhere, one number format, and one store reader."""

import pytest

from explain_helpers import SPEC, view
from scalelab import _spec, explain
from scalelab.report import _html, _summary as _report
from scalelab._format import fmt, level_label, pct, value_label

LEVELS = [{}, {"input.scale": "1/255"}, {"input.scale": 1e-3, "optim.lr": 0.1}, {"arm": "raw", "seed": 0},
          {"model.batchnorm": True, "model.hidden": [64, 64]}]


@pytest.mark.parametrize("level", LEVELS)
def test_every_reader_labels_a_level_the_same_way(level):
    label = level_label(level)
    assert view(level, SPEC, {}).label == label                                      # explain
    assert _spec.Trial(study="s", level=level, seed=0, spec=_spec.TrialSpec(name="s")).level_name == label  # the engine's trials
    assert _report.level_label is level_label and _html.level_label is level_label   # report, HTML
    assert _report.to_csv([dict(level=level, n_seeds=1, n_diverged=0, train_loss_by_epoch=[], val_loss_by_epoch=[],
                                val_acc_by_epoch=[], **{m: dict(mean=None, std=None, ci95=[None, None])
                                                        for m in _report.SUMMARY_METRICS})]).splitlines()[1] \
        .startswith(label if "," not in label else f'"{label}"')


def test_formats():
    assert level_label({}) == "(base)" and level_label({"s": "1/255", "lr": 0.001}) == "s=1/255, lr=0.001"
    assert value_label(1e-3) == "0.001" and value_label("1/255") == "1/255" and value_label(True) == "True"
    assert fmt(None) == "—" and fmt(0.123456) == "0.1235" and fmt(0.123456, 2) == "0.12"
    assert [pct(x) for x in (0, 0.0004, 0.05, 0.5)] == ["0%", "<0.1%", "5.0%", "50%"]


def test_explain_is_still_the_function_on_the_package():
    assert callable(explain)
