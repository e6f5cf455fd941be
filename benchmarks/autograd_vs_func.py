"""Gradients of a stacked group: autograd through the batched ops vs torch.func (vmap of
grad of the single-model loss). The engine keeps the faster one as its default.

    python benchmarks/autograd_vs_func.py [--models 32] [--repeats 30] [--json]

Both compute the same gradients (checked here in float64 first); the timing is float32,
the 784-128-10 MLP of the input-scaling study, batch 32, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from scalelab._spec import ModelSpec  # noqa: E402
from scalelab.models import Pass, build_model, stack_params  # noqa: E402


def setup(M: int, dtype):
    model = build_model(ModelSpec(hidden=[128]), 784, 10)
    params = stack_params([model.init(s, "glorot_uniform", 1.0, "zeros") for s in range(M)], dtype, "cpu")
    params = {k: v.requires_grad_() for k, v in params.items()}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(M, 32, 784, generator=g, dtype=dtype)
    y = torch.randint(0, 10, (M, 32), generator=g)
    return model, params, x, y


def autograd_grads(model, params, x, y):
    out = model.forward(params, x, Pass(x.shape[0]))
    loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)
    return torch.autograd.grad(loss.sum(), list(params.values()))


def func_grads(model, params, x, y):
    def one(p, xm, ym):
        h = xm
        for layer in model.layers:
            h = layer.forward_one(p, h)
        return F.cross_entropy(h, ym)

    detached = {k: v.detach() for k, v in params.items()}
    grads = torch.func.vmap(torch.func.grad(one))(detached, x, y)
    return [grads[k] for k in params]


def timed(fn, *args, repeats: int) -> float:
    for _ in range(3):
        fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model, params, x, y = setup(3, torch.float64)
    for a, b in zip(autograd_grads(model, params, x, y), func_grads(model, params, x, y)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    model, params, x, y = setup(args.models, torch.float32)
    res = dict(models=args.models, autograd_s=timed(autograd_grads, model, params, x, y, repeats=args.repeats),
               torch_func_s=timed(func_grads, model, params, x, y, repeats=args.repeats))
    res["func_over_autograd"] = res["torch_func_s"] / res["autograd_s"]
    print(json.dumps(res) if args.json else
          f"M={args.models}: autograd {1e3 * res['autograd_s']:.2f} ms, torch.func {1e3 * res['torch_func_s']:.2f} ms "
          f"(torch.func / autograd = {res['func_over_autograd']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
