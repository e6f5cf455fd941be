"""Saturation: one principle (the derivative at most 1% of its peak) gives each activation
its own |z| threshold; the thresholds and the probe's shares against autograd's derivative."""

import pytest
import torch

from conftest import small_spec
from scalelab import StackedGroup, StepView, expand
from scalelab._spec import parse_spec
from scalelab.probes import Saturation
from scalelab.probes._base import ProbeContext
from scalelab.probes._records import PEAK_SHARE, SATURATION_Z

FNS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}


def _derivative(fn, z):
    z = torch.as_tensor(z, dtype=torch.float64).requires_grad_()
    (d,) = torch.autograd.grad(FNS[fn](z).sum(), z)
    return d


@pytest.mark.parametrize("fn", ["tanh", "sigmoid"])
def test_threshold_is_where_autograds_derivative_falls_to_one_percent_of_its_peak(fn):
    z = SATURATION_Z[fn]
    peak = float(_derivative(fn, 0.0))                       # the derivative's maximum, at z = 0
    d = _derivative(fn, [-z, z, 0.999 * z, 1.001 * z])
    torch.testing.assert_close(d[:2] / peak, torch.full((2,), PEAK_SHARE, dtype=torch.float64), rtol=1e-9, atol=0)
    assert d[2] / peak > PEAK_SHARE > d[3] / peak            # inside passes more, beyond less
    # what a shared |z| > 3 would have called saturated: 1% of tanh's peak, but 18% of sigmoid's
    assert SATURATION_Z["tanh"] == pytest.approx(2.9932, abs=1e-4)
    assert SATURATION_Z["sigmoid"] == pytest.approx(5.9864, abs=1e-4)


def test_sigmoid_probe_counts_the_units_whose_autograd_derivative_is_below_one_percent(fake_fmnist):
    """Unscaled pixels (0–255) put many sigmoid pre-activations far out, some between 3 and 6."""
    spec = parse_spec(small_spec(fake_fmnist, seeds=[0], train__dtype="float64", input={"transform": "none"},
                                 model={"hidden": [16], "activation": "sigmoid"}))
    g = StackedGroup(expand(spec), str(fake_fmnist))
    view = StepView(g)
    ctx = ProbeContext(view, 0, None, torch.arange(200))
    got = Saturation().compute(ctx)
    x, y = ctx.probe_batch()
    taps: dict = {}
    with torch.no_grad():
        view.per_sample(view.params, x, y, taps)
    z = taps["pre0"]
    d = _derivative("sigmoid", z) / 0.25
    between = ((z.abs() > 3) & (z.abs() <= SATURATION_Z["sigmoid"])).double().mean()
    assert between > 0.01                                    # the old |z| > 3 would count these too
    assert float(got["pre0.saturated_frac"][0]) == pytest.approx(float((d < PEAK_SHARE).double().mean()), abs=1e-12)
    assert float(got["act0.rel_derivative"][0]) == pytest.approx(float(d.mean()), rel=1e-10)
