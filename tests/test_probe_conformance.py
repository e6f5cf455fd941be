"""Probe conformance, as cockpit tests its quantities: every probe × a table of small problems,
each recorded value against a plain per-model autograd twin.

The twin rebuilds ONE model of a stacked group from its slice of the stacked parameters
with plain torch.nn.functional ops (its own forward, its own loss, its own input
transform, its own optimizer and BatchNorm running averages) and trains itself on the
same batches. Nothing of the engine's forward, loss or optimizer code is reused: a
disagreement is either a probe bug or an engine bug, never a shared one.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scalelab import StackedGroup, StepView, expand
from scalelab._spec import parse_spec
from scalelab.probes import (PROBES, Activations, AdamEps, ErrorSignal, Gradients, Hessian, Logits, Loss,
                             PreactivationStep, ProbeSet, SampleLoss, Saturation, Scales, UpdateRatio, ZeroGradient)

STEPS = 2            # steps 0 and 1: Adam's first step (bias corrections at their extreme) and a later one
PROBE_BATCH = 12     # the forward probes' fixed rows (also the Hessian's batch)
HESSIAN_ITERS = 250  # power iterations: the slowest problem here has |λ2/λ1| ≈ 0.96 (0.96^500 ≈ 1e-9)
RTOL = 1e-9          # float64, exact quantities: only summation order differs
HESSIAN_RTOL = 1e-6  # power iteration is iterative: its Rayleigh quotient converges as (λ2/λ1)^(2k), not exactly

BASE = {"name": "conformance", "seeds": [0, 1],
        "data": {"validation": 0},
        "train": {"dtype": "float64", "batch_size": 16, "epochs": 1, "compile": False}}
IRIS = {"dataset": "iris"}
STD = {"transform": "standardize"}

# name -> spec sections over BASE. Between them every probe applies somewhere (asserted below).
PROBLEMS = {
    # depth 1: no hidden layer, the activations probe only sees the head's pre-activations
    "iris-depth1-sgd": dict(profile="torch", data=IRIS, input=STD, model={"hidden": []},
                            optim={"name": "sgd", "lr": 0.1}),
    "iris-depth2-relu-momentum": dict(profile="torch", data=IRIS, input=STD, model={"hidden": [6]},
                                      optim={"name": "momentum", "lr": 0.05}),
    "iris-depth3-tanh-adam": dict(profile="torch", data=IRIS, input=STD, seeds=[3, 7],
                                  model={"hidden": [6, 5], "activation": "tanh"}, optim={"name": "adam", "lr": 0.01}),
    # Keras: softmax output, clipped probabilities, Keras's eps. Raw digits (0..16) and a large
    # init saturate the softmax, so some probe samples have an exactly zero gradient
    "digits-keras-clipped-adam": dict(profile="keras", data={"dataset": "digits", "train_subset": 64},
                                      model={"hidden": [4], "init_scale": 3.0}, optim={"name": "adam", "lr": 0.01}),
    "iris-batchnorm-adam": dict(profile="torch", data=IRIS, input=STD, model={"hidden": [6], "batchnorm": True},
                                optim={"name": "adam", "lr": 0.01}),
    "diabetes-depth3-relu-keras-adam": dict(profile="keras", data={"dataset": "diabetes"}, input=STD,
                                            target={"transform": "standardize"}, loss={"name": "mse"},
                                            model={"hidden": [6, 5]}, optim={"name": "adam", "lr": 0.01}),
    # raw targets (~150): large residuals make the Hessian indefinite, and for one seed its
    # eigenvalue of largest magnitude is negative; the probe must keep the sign
    "diabetes-tanh-raw-target-sgd": dict(profile="torch", data={"dataset": "diabetes"}, input=STD,
                                         loss={"name": "mse"}, model={"hidden": [6], "activation": "tanh"},
                                         optim={"name": "sgd", "lr": 1e-5}),
    "heatmap-fcn-adam": dict(profile="torch", data={"dataset": "heatmap", "n_samples": 32}, loss={"name": "mse"},
                             model={"kind": "fcn", "conv": [3], "kernel": 3}, optim={"name": "adam", "lr": 0.01}),
    "heatmap-fcn-batchnorm-momentum": dict(profile="torch", data={"dataset": "heatmap", "n_samples": 32},
                                           loss={"name": "mse"}, target={"transform": "standardize"},
                                           model={"kind": "fcn", "conv": [2], "kernel": 3, "batchnorm": True,
                                                  "activation": "tanh"},
                                           optim={"name": "momentum", "lr": 0.01}),
}


def problem_spec(name):
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for sec, v in PROBLEMS[name].items():
        d[sec] = {**d.get(sec, {}), **v} if isinstance(v, dict) else v
    return parse_spec(d)


def applicable(spec) -> set[str]:
    """The probes that make sense for a problem, from its spec alone (not from probe.applies)."""
    out = set(PROBES)
    if spec.loss.name != "crossentropy":
        out -= {"logits", "sample_loss"}         # regression has no classes
    if spec.model.kind != "mlp" or spec.model.batchnorm:
        out -= {"activations", "preact_step", "error_signal", "saturation"}    # they read dense-only taps
    if spec.model.activation not in ("tanh", "sigmoid") or not spec.model.hidden:
        out -= {"saturation"}                    # saturating units only
    if spec.optim.name not in ("adam", "adamw"):
        out -= {"adam_eps"}
    return out


# ----------------------------------------------------------------------------- the twin

def np_transform(sec, X):
    """The twin's own affine input/target transform, fitted on the training rows."""
    X = X.astype(np.float64)
    if sec.transform == "none":
        return X
    assert sec.transform == "standardize"
    axis = 0 if sec.per_feature else None
    sd = X.std(axis=axis)
    return (X - X.mean(axis=axis)) / np.where(sd > 0, sd, 1.0)   # a constant feature stays as is (all zero)


class Twin:
    """Model m of group g rebuilt per model with plain functional ops; it trains itself."""

    def __init__(self, g, m):
        s = g.trials[m].spec
        self.P = {k: v[m].detach().clone().requires_grad_() for k, v in g.params.items()}
        self.names = list(self.P)
        self.conv = s.model.kind == "fcn"
        self.depth = len(s.model.conv if self.conv else s.model.hidden) + 1
        self.prefix, self.k = ("conv" if self.conv else "dense"), s.model.kernel
        self.act = {"relu": torch.relu, "tanh": torch.tanh}[s.model.activation]
        self.bn, self.bn_momentum, self.bn_eps = s.model.batchnorm, s.model.bn_momentum, s.model.bn_eps
        self.running = {i: (torch.zeros(self.P[f"bn{i}.gamma"].numel(), dtype=torch.float64),
                            torch.ones(self.P[f"bn{i}.gamma"].numel(), dtype=torch.float64))
                        for i in range(self.depth - 1)} if self.bn else {}
        self.image = g.image_shape
        self.loss, self.from_logits, self.clip = s.loss.name, s.loss.from_logits, s.loss.clip
        self.classification = self.loss == "crossentropy"
        self.plain = not self.conv and not self.bn
        # biases whose gradient BatchNorm cancels exactly (see reference_step)
        self.cancelled = {f"{self.prefix}{i}.b" for i in range(self.depth - 1)} if self.bn else set()
        sp = g.split
        self.x = torch.as_tensor(np_transform(s.input, sp.X_train))
        self.y = torch.as_tensor(sp.y_train.astype(np.int64) if self.classification else
                                 np_transform(s.target, sp.y_train))
        o = self.o = s.optim
        ps = list(self.P.values())
        self.keras_adam = o.name == "adam" and o.eps_mode == "keras"
        if o.name in ("sgd", "momentum"):
            self.opt = torch.optim.SGD(ps, lr=o.lr, momentum=o.momentum if o.name == "momentum" else 0.0,
                                       nesterov=o.nesterov)
        elif o.name == "adam" and not self.keras_adam:
            self.opt = torch.optim.Adam(ps, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
        else:  # Keras's Adam, written out below
            assert self.keras_adam and o.weight_decay == 0
            self.t, self.mom = 0, {k: torch.zeros_like(p) for k, p in self.P.items()}
            self.vel = {k: torch.zeros_like(p) for k, p in self.P.items()}

    # -- model and loss

    def forward(self, P, x, training=False):
        """Outputs (n, n_out); each weighted layer's pre-activations; each hidden activation."""
        h = x.reshape(len(x), *self.image) if self.conv else x
        pres, acts = [], []
        for i in range(self.depth):
            W, b = P[f"{self.prefix}{i}.W"], P[f"{self.prefix}{i}.b"].reshape(-1)
            if self.conv:   # kernel stored (c_in·k·k, c_out), as a dense kernel
                z = F.conv2d(h, W.T.reshape(W.shape[1], -1, self.k, self.k), b, padding=self.k // 2)
            else:           # kernel stored (fan_in, fan_out)
                z = F.linear(h, W.T, b)
            pres.append(z)
            if i == self.depth - 1:
                break
            if self.bn:
                rm, rv = self.running[i]
                z = F.batch_norm(z, rm, rv, P[f"bn{i}.gamma"].reshape(-1), P[f"bn{i}.beta"].reshape(-1), training,
                                 1 - self.bn_momentum, self.bn_eps)
            h = self.act(z)
            acts.append(h)
        return z.reshape(len(x), -1), pres, acts

    def per_sample(self, out, y):
        if self.loss == "mse":
            return F.mse_loss(out, y, reduction="none").mean(-1)
        if self.from_logits:
            return F.cross_entropy(out, y, reduction="none")
        p = torch.softmax(out, -1)   # Keras: softmax output, renormalised, clipped, -log
        p_true = p.gather(1, y[:, None])[:, 0] / p.sum(-1)
        return -torch.log(p_true.clamp(self.clip, 1 - self.clip))

    def mean_loss(self, P, x, y, training=False):
        return self.per_sample(self.forward(P, x, training)[0], y).mean()

    # -- slow references

    def zero_grad_share(self, x, y):
        """A sample counts iff its own loss gradient w.r.t. ALL parameters is exactly zero;
        classification also splits the share by correct and misclassified samples."""
        ps = list(self.P.values())
        zero = []
        for i in range(len(x)):
            grads = torch.autograd.grad(self.mean_loss(self.P, x[i:i + 1], y[i:i + 1]), ps, allow_unused=True)
            zero.append(all(gr is None or bool((gr == 0).all()) for gr in grads))
        zero = np.array(zero)
        out = {ZeroGradient.SHARE: zero.mean()}
        if self.classification:
            with torch.no_grad():
                correct = (self.forward(self.P, x)[0].argmax(1) == y).numpy()
            out[ZeroGradient.SHARE_CORRECT] = np.mean(zero & correct)
            out[ZeroGradient.SHARE_WRONG] = np.mean(zero & ~correct)
        return out

    def error_signal(self, x, y):
        """d(Σ per-sample loss)/dz_l for every weighted layer, by autograd through the twin's own forward."""
        out, pres, _ = self.forward(self.P, x)
        grads = torch.autograd.grad(self.per_sample(out, y).sum(), pres)
        return {ErrorSignal.RMS.format(layer=i): float(g.pow(2).mean().sqrt()) for i, g in enumerate(grads)}

    def hessian_extremes(self, x, y):
        """The largest and the smallest eigenvalue of the exact Hessian of all (flattened) parameters."""
        shapes = [self.P[k].shape for k in self.names]
        sizes = [math.prod(s) for s in shapes]

        def loss_of(flat):
            return self.mean_loss(dict(zip(self.names, (t.view(s) for t, s in zip(flat.split(sizes), shapes)))), x, y)

        flat = torch.cat([self.P[k].detach().reshape(-1) for k in self.names])
        eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat, vectorize=True))
        return {Hessian.MAX_EIGENVALUE: float(eig[-1]), Hessian.MIN_EIGENVALUE: float(eig[0])}

    def train_step(self, rows):
        """One optimizer step on training rows; returns (batch loss, its gradients)."""
        loss = self.mean_loss(self.P, self.x[rows], self.y[rows], training=True)  # BN: batch statistics
        grads = dict(zip(self.names, torch.autograd.grad(loss, list(self.P.values()))))
        with torch.no_grad():
            if self.keras_adam:   # lr·sqrt(1 - b2^t)/(1 - b1^t) · m / (sqrt(v) + eps), v uncorrected
                o, self.t = self.o, self.t + 1
                lr_t = o.lr * math.sqrt(1 - o.beta2 ** self.t) / (1 - o.beta1 ** self.t)
                for k, p in self.P.items():
                    self.mom[k] = o.beta1 * self.mom[k] + (1 - o.beta1) * grads[k]
                    self.vel[k] = o.beta2 * self.vel[k] + (1 - o.beta2) * grads[k] ** 2
                    p -= lr_t * self.mom[k] / (self.vel[k].sqrt() + o.eps)
            else:
                for k, p in self.P.items():
                    p.grad = grads[k].clone()
                self.opt.step()
        return loss.item(), grads

    def adam_grad_part(self, k):
        """The gradient's part of Adam's denominator (the other part is eps) after the step."""
        o = self.o
        if self.keras_adam:
            return self.vel[k].sqrt()
        st = self.opt.state[self.P[k]]
        return st["exp_avg_sq"].sqrt() / math.sqrt(1 - o.beta2 ** float(st["step"]))

    def reference_step(self, probe_rows, batch_rows):
        """Every applicable probe's values at this step, then the twin's own update."""
        x, y = self.x[probe_rows], self.y[probe_rows]
        ref = {}   # probe -> {quantity: value}
        with torch.no_grad():
            out, pres, acts = self.forward(self.P, x)
            per = self.per_sample(out, y)
        if self.classification:
            ref["logits"] = logits_ref(out.numpy(), y.numpy(), self.clip)
            ref["sample_loss"] = sample_loss_ref(per.numpy(), out.numpy(), y.numpy())
        if self.plain:
            ref["activations"] = activation_stats([z.numpy() for z in pres], [a.numpy() for a in acts])
            ref["error_signal"] = self.error_signal(x, y)
            if self.act is torch.tanh and acts:
                ref["saturation"] = {}
                for i, (z, a) in enumerate(zip(pres, acts)):
                    ref["saturation"][Saturation.SATURATED.format(layer=i)] = float(((1 - a * a) < 0.01).double().mean())
                    ref["saturation"][Saturation.REL_DERIVATIVE.format(layer=i)] = float((1 - a * a).mean())
        ref["scales"] = scales_ref(x.numpy(), out.numpy(), None if self.classification else y.numpy())
        ref["zero_grad"] = self.zero_grad_share(x, y)
        ref["hessian"] = self.hessian_extremes(x, y)
        before = {k: p.detach().clone().numpy() for k, p in self.P.items()}
        loss, grads = self.train_step(batch_rows)
        after = {k: p.detach().numpy() for k, p in self.P.items()}
        ref["loss"] = {Loss.PROBE_BATCH: float(per.mean()), Loss.BATCH: loss}
        norms = {k: float(gr.norm()) for k, gr in grads.items()}
        total = math.sqrt(sum(n * n for n in norms.values()))
        ref["gradients"] = {**{Gradients.NORM.format(param=k): n for k, n in norms.items()},
                            Gradients.TOTAL_NORM: total}
        d = {k: after[k] - before[k] for k in before}
        ref["update"] = {}
        for k in d:
            # a zero tensor (Keras's zero biases at step 0) has no relative update: the probe's
            # convention divides by 1e-30 (a huge finite ratio) rather than recording inf
            ref["update"][UpdateRatio.RATIO.format(param=k)] = np.linalg.norm(d[k]) / max(np.linalg.norm(before[k]),
                                                                                         1e-30)
            ref["update"][UpdateRatio.RMS.format(param=k)] = np.sqrt(np.mean(d[k] ** 2))
        # A conv/dense bias right before BatchNorm has a gradient that is exactly zero in exact
        # arithmetic (training-mode BN subtracts the batch mean): both sides compute rounding
        # noise there (~1e-17), and its update is noise too (Adam: at most lr·|g|/eps ~ 1e-9·lr).
        # Comparing noise with noise means nothing; assert instead that both sides are at noise level.
        lr = self.o.lr
        zero = {}
        for k in self.cancelled:
            zero[Gradients.NORM.format(param=k)] = 1e-12 * total
            zero[UpdateRatio.RMS.format(param=k)] = 1e-6 * lr
            zero[UpdateRatio.RATIO.format(param=k)] = 1e-6 * lr / max(np.sqrt(np.mean(before[k] ** 2)), 1e-30)
        if self.plain:   # ΔZ_l = h_{l-1}·ΔW_l + Δb_l with the layer's input before the step
            step = ref["preact_step"] = {}
            for i, z in enumerate(pres):
                h = (x if i == 0 else acts[i - 1]).numpy()
                rms = np.sqrt(np.mean((h @ d[f"dense{i}.W"] + d[f"dense{i}.b"]) ** 2))
                step[PreactivationStep.RMS_CHANGE.format(layer=i)] = rms
                step[PreactivationStep.REL_CHANGE.format(layer=i)] = rms / np.sqrt(np.mean(z.numpy() ** 2))
        if self.o.name == "adam":
            ref["adam_eps"] = {}
            for k in self.names:
                part, eps = self.adam_grad_part(k).numpy(), self.o.eps
                ref["adam_eps"][AdamEps.SHARE_MEDIAN.format(param=k)] = np.median(eps / (part + eps))
                ref["adam_eps"][AdamEps.DOMINATED_FRAC.format(param=k)] = np.mean(eps > part)
        return ref, zero


def logits_ref(out, y, clip):
    e = np.exp(out - out.max(1, keepdims=True))
    p_true = (e / e.sum(1, keepdims=True))[np.arange(len(y)), y]
    n, k = out.shape
    share = np.bincount(out.argmax(1), minlength=k) / n
    top = np.sort(share)[::-1]
    # the fewest classes that cover 95% of the predictions (1e-9: a share sum that rounds below 0.95)
    covering = next(j for j in range(1, k + 1) if top[:j].sum() >= 0.95 - 1e-9)
    return {Logits.MAX_ABS: np.abs(out).max(), Logits.MEDIAN_RANGE: np.median(out.max(1) - out.min(1)),
            Logits.BELOW_CLIP: np.mean(p_true < clip), Logits.ABOVE_CLIP: np.mean(p_true > 1 - clip),
            **{Logits.PRED_SHARE.format(cls=c): share[c] for c in range(k)},
            Logits.TOP_CLASS_SHARE: top[0], Logits.CLASSES_FOR_95: covering,
            Logits.TRUE_CLASSES_FOR_95: next(j for j in range(1, k + 1)
                                             if np.sort(np.bincount(y, minlength=k) / n)[::-1][:j].sum() >= 0.95 - 1e-9)}


def sample_loss_ref(per, out, y):
    n = len(per)
    k = -(-n // 20)                                   # the 5% highest-loss samples, rounded up
    return {SampleLoss.TOP5_SHARE: np.sort(per)[::-1][:k].sum() / per.sum(), SampleLoss.MEDIAN: np.median(per),
            SampleLoss.ACCURACY: np.mean(out.argmax(1) == y)}


def scales_ref(x, out, y):
    sd = x.reshape(len(x), -1).std(axis=0)            # per feature, population std
    varies = sd > 1e-12 * sd.max()
    ref = {Scales.INPUT_STD_RATIO: sd.max() / sd[varies].min()}
    if y is not None:
        ref.update({Scales.OUTPUT_MEAN: out.mean(), Scales.OUTPUT_STD: out.std(),
                    Scales.TARGET_MEAN: y.mean(), Scales.TARGET_STD: y.std()})
    return ref


def activation_stats(pres, acts):
    """Every dense layer's pre-activations (the head's are its outputs); every hidden activation."""
    out = {}
    for kind, ts, (mean, std, max_abs) in (("pre", pres, (Activations.PRE_MEAN, Activations.PRE_STD,
                                                           Activations.PRE_MAX_ABS)),
                                           ("act", acts, (Activations.ACT_MEAN, Activations.ACT_STD,
                                                          Activations.ACT_MAX_ABS))):
        for i, t in enumerate(ts):
            out[mean.format(layer=i)] = t.mean()
            out[std.format(layer=i)] = t.std(ddof=1)     # torch's unbiased std over samples and units
            out[max_abs.format(layer=i)] = np.abs(t).max()
            if kind == "act":
                out[Activations.DEAD_FRAC.format(layer=i)] = np.mean((t == 0).all(axis=0))
    return out


# ----------------------------------------------------------------------------- the tests

@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: on a busy machine, intra-op threads only wait on each other
    (a grouped-conv Hessian-vector product measured 250 ms with 2 threads, 7 ms with 1)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


REFERENCED = {"loss", "gradients", "logits", "zero_grad", "activations", "update", "preact_step", "adam_eps",
              "hessian", "sample_loss", "scales", "saturation", "error_signal"}   # what Twin.reference_step computes


def test_the_table_covers_every_probe():
    assert REFERENCED == set(PROBES)
    covered = set().union(*(applicable(problem_spec(n)) for n in PROBLEMS))
    assert covered == set(PROBES)   # every probe applies to at least one problem
    # and every probe is skipped somewhere it does not apply (nothing is recorded there)
    assert set.intersection(*(applicable(problem_spec(n)) for n in PROBLEMS)) == \
        {"loss", "gradients", "zero_grad", "update", "hessian", "scales"}


# some samples have an exactly zero gradient; a negative curvature dominates
NONTRIVIAL = {"digits-keras-clipped-adam": ("zero_grad", ZeroGradient.SHARE, lambda v: 0 < v < 1),
              "diabetes-tanh-raw-target-sgd": ("hessian", Hessian.MIN_EIGENVALUE, lambda v: v < 0)}


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_probes_match_a_plain_autograd_twin(name):
    torch.manual_seed(0)
    spec = problem_spec(name)
    g = StackedGroup(expand(spec), None)
    assert g.M == 2 and g.dtype == torch.float64
    probes = [Hessian(PROBE_BATCH, HESSIAN_ITERS) if n == "hessian" else cls() for n, cls in PROBES.items()]
    ps = ProbeSet(probes, schedule="linear", every=1, batch=PROBE_BATCH)
    view = StepView(g)
    ps.on_group_start(view)
    twins = [Twin(g, m) for m in range(g.M)]   # from the initial parameters, before any step
    probe_rows = ps.probe_rows.numpy()
    perm = g.permutations()
    b = g.batch_size
    expected, noise = [{} for _ in range(g.M)], [{} for _ in range(g.M)]
    for s in range(STEPS):
        idx = perm[:, s * b:(s + 1) * b]
        view.batch = idx                    # the probe set as the engine's loop drives it
        ps.on_step_start(view)
        view.loss = g.train_step(idx)[0]
        ps.on_step_end(view)
        for m, twin in enumerate(twins):
            ref, zero = twin.reference_step(probe_rows, idx[m].numpy())
            for probe, vals in ref.items():
                expected[m][s, probe] = vals
            noise[m][s] = zero

    want = applicable(spec)
    assert {p.name for p in probes if p.applies(view)} == want
    for m in range(g.M):
        got = {}
        for step, probe, q, v in view.records(m):
            got.setdefault((step, probe), {})[q] = v
        # the same (step, probe) pairs: a probe that does not apply recorded nothing
        assert set(got) == set(expected[m]) == {(s, p) for s in range(STEPS) for p in want}
        for key, ref in expected[m].items():
            assert set(got[key]) == set(ref), (key, m)
            rtol = HESSIAN_RTOL if key[1] == "hessian" else RTOL
            for q, v in ref.items():
                bound = noise[m][key[0]].get(q) if key[1] in ("gradients", "update") else None
                if bound is not None:   # exactly zero but for rounding: both sides at noise level
                    assert abs(got[key][q]) <= bound and abs(v) <= bound, (name, m, key, q, got[key][q], v)
                elif key[1] == "hessian" and abs(v) < max(abs(x) for x in ref.values()):
                    # the end of the spectrum that is not dominant comes from the shifted power iteration,
                    # which converges at the rate of the gap there, small in these models (many
                    # eigenvalues near zero): its Rayleigh quotient lies inside the spectrum and within
                    # 1% of the spread of that end
                    lo, hi = ref[Hessian.MIN_EIGENVALUE], ref[Hessian.MAX_EIGENVALUE]
                    spread = hi - lo
                    assert lo - 1e-9 * spread <= got[key][q] <= hi + 1e-9 * spread, (name, m, key, q, got[key][q], v)
                    assert abs(got[key][q] - v) <= 1e-2 * spread, (name, m, key, q, got[key][q], v)
                else:
                    assert got[key][q] == pytest.approx(float(v), rel=rtol, abs=0), (name, m, key, q)
    if name in NONTRIVIAL:   # the case is not trivial for the probe it is there for
        probe, q, holds = NONTRIVIAL[name]
        assert any(holds(expected[m][s, probe][q]) for m in range(g.M) for s in range(STEPS))
