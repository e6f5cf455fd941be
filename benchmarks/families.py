"""Is the stacked engine fast for every model family, not only the MLP? Per family, the
training step of scalelab's engine with M = 1, 8 and 32 models stacked, against a plain
PyTorch loop (torch.nn modules and torch.optim.Adam, one model at a time, as users write
it; trained M times it takes M times as long) and real Keras 3 (KERAS_BACKEND=torch) where
the family exists there. Same data, same batch size, same number of steps; the runners'
timed bursts are interleaved, so every ratio is measured in one run under the same load.

Families (each the model of a built-in study):
  mlp      input-scaling: Fashion-MNIST 784-128-10, batch 32
  conv     batchnorm-regression: a fully convolutional net, 24x24 heat maps, conv 16-16-1, batch 16
  lstm     embedding-size (v2k): embedding 2,000 x 32 -> LSTM 32 over 20 tokens -> 2 classes, batch 32
  mdn      trajectories (mdn_nll): LSTM encoder-decoder, 5-component mixture over 6 future steps, batch 256
  cvae     trajectories (cvae_elbo): LSTM conditional VAE, batch 256
  cv       run-variance: one outer fold's fit of the 10,000-12-2 network on 64 rows (20 epochs of
           2 steps, each epoch scored on the fold's rows, then its probabilities), as the
           cross-validated study trains it; plain and Keras score every epoch too
           (Keras: fit with validation_data, then predict)

Reported per family: seconds per model-step (per model-fit for cv) of each runner (median of
the timed bursts) and the ratios plain / scalelab and Keras / scalelab per model.

    python benchmarks/families.py [--families mlp,conv,...] [--models 1,8,32] [--reps 3] [--json FILE]
    python benchmarks/families.py --profile cvae --models 32     # where a family's step time goes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import scalelab  # noqa: E402
from scalelab._runtime import flush_denormals  # noqa: E402
from scalelab._spec import StudySpec, _set_path, expand  # noqa: E402
from scalelab.engine import StackedGroup  # noqa: E402

FMNIST = os.environ.get("SCALELAB_FMNIST_DIR")     # a Fashion-MNIST folder (else the loader's default)

# family -> (built-in study, overrides, steps per timed burst)
FAMILIES = {
    "mlp": ("input-scaling", {"input.scale": 1 / 255}, 40),
    "conv": ("batchnorm-regression", {"model.batchnorm": False, "target.transform": "none"}, 20),
    "lstm": ("embedding-size", {"data.vocab": 2000, "optim.name": "adam",
                                "model.layers": [{"kind": "embedding", "vocab": 2000, "dim": 32},
                                                 {"kind": "lstm", "units": 32, "steps": 20}]}, 20),
    "mdn": ("trajectories", {"loss.name": "mdn_nll", "data.n_samples": 6000, "data.validation": 500,
                             "trajectory.n_test": 200}, 6),
    "cvae": ("trajectories", {"loss.name": "cvae_elbo", "data.n_samples": 6000, "data.validation": 500,
                              "trajectory.n_test": 200}, 6),
}


def study_trials(study: str, overrides: dict, M: int):
    """The trials of one arm of a built-in study with M seeds (its grid and arms dropped,
    ``overrides`` set)."""
    d = scalelab.builtin_spec(study).model_dump(exclude={"grid", "arms", "descriptions"})
    for k, v in overrides.items():
        _set_path(d, k, v)
    d["seeds"] = list(range(M))
    return expand(StudySpec.model_validate(d))


class Stacked:
    """scalelab: M models as one stacked group, stepping over its own batch orders."""

    def __init__(self, trials):
        self.g = StackedGroup(trials, FMNIST)
        self.models = self.g.M
        self.perm = self.g.permutations()
        self.s = 0

    def burst(self, steps):
        g, B = self.g, self.g.batch_size
        with flush_denormals(g.spec.train.flush_denormals):   # as train_group does
            for _ in range(steps):
                st = self.s % (g.n_train // B)
                g.train_step(self.perm[:, st * B:(st + 1) * B])
                self.s += 1


# -- plain PyTorch: the same models as torch.nn modules


class TrajectoryNet(nn.Module):
    """The trajectory models of scalelab/trajectories/_net.py as torch.nn modules: an LSTM
    encoder over the observed steps; a decoder LSTM over the future steps fed the encoder's
    state (and z) at every step; per-step outputs plus a skip from the last two observed
    positions; a mixture's logits from the encoder state, or a CVAE's posterior LSTM."""

    def __init__(self, kind, n_obs, T, H, K=5, L=4):
        super().__init__()
        self.kind, self.n_obs, self.T, self.H, self.K, self.L = kind, n_obs, T, H, K, L
        P = 4 * K if kind == "mdn" else 2
        self.enc = nn.LSTM(2, H, batch_first=True)
        self.dec = nn.LSTM(H + (L if kind == "cvae" else 0), H, batch_first=True)
        self.out = nn.Linear(H, P)
        self.skip = nn.Parameter(torch.zeros(T, 4, P))
        if kind == "mdn":
            self.mix = nn.Linear(H + 4, K)
        else:
            self.post = nn.LSTM(2, H, batch_first=True)
            self.q = nn.Linear(2 * H, 2 * L)
            self.prior = nn.Linear(H, 2 * L)
            self.log_sigma = nn.Parameter(torch.zeros(()))

    def loss(self, x, y):
        b, T = x.shape[0], self.T
        _, (h, _) = self.enc(x.view(b, self.n_obs, 2))
        h = h[0]
        ctx = x[:, -4:]
        if self.kind == "mdn":
            seq, _ = self.dec(h[:, None].expand(b, T, self.H))
            out = self.out(seq) + torch.einsum("bc,tcp->btp", ctx, self.skip)
            logpi = torch.log_softmax(self.mix(torch.cat([h, ctx], 1)), -1)
            per = out.view(b, T, self.K, 4).permute(0, 2, 1, 3)
            mu, logsig = per[..., :2], 7.0 * torch.tanh(per[..., 2:] / 7.0)
            yy = y.view(b, 1, T, 2)
            logn = (-0.5 * ((yy - mu) / logsig.exp()) ** 2 - logsig - 0.5 * math.log(2 * math.pi)).sum((-1, -2))
            return (-torch.logsumexp(logpi + logn, -1) / (2 * T)).mean()
        _, (hy, _) = self.post(y.view(b, T, 2))
        mu_q, lv_q = self.q(torch.cat([h, hy[0]], 1)).chunk(2, 1)
        mu_p, lv_p = self.prior(h).chunk(2, 1)
        z = mu_q + torch.exp(0.5 * lv_q) * torch.randn_like(mu_q)
        kl = 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p) ** 2) / lv_p.exp() - 1).sum(1)
        seq, _ = self.dec(torch.cat([h, z], 1)[:, None].expand(b, T, self.H + self.L))
        mean = (self.out(seq) + torch.einsum("bc,tcp->btp", ctx, self.skip)).reshape(b, -1)
        ls = self.log_sigma
        nll = (0.5 * (y - mean) ** 2 / torch.exp(2 * ls) + ls + 0.5 * math.log(2 * math.pi)).sum(-1)
        return ((nll + kl) / (2 * T)).mean()


class SeqClassifier(nn.Module):
    def __init__(self, vocab, dim, units, n_out):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, units, batch_first=True)
        self.head = nn.Linear(units, n_out)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.emb(ids))
        return self.head(h[0])


def plain_model(family, g: StackedGroup):
    s = g.spec
    if family in ("mlp", "cv"):
        sizes = [g.X_train.shape[1], *s.model.hidden, g.split.n_classes]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    if family == "conv":
        c, h, w = g.image_shape
        chans = [c, *s.model.conv, g.y_train.shape[1] // (h * w)]
        layers = [nn.Unflatten(1, (c, h, w))]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, s.model.kernel, padding=s.model.kernel // 2), nn.ReLU()]
        return nn.Sequential(*layers[:-1], nn.Flatten())
    if family == "lstm":
        emb, lstm = s.model.layers
        return SeqClassifier(emb["vocab"], emb["dim"], lstm["units"], g.split.n_classes)
    tr = s.trajectory
    return TrajectoryNet(family, tr.n_obs, tr.n_future, tr.units, tr.components, tr.latent)


class Plain:
    """One torch.nn model and torch.optim.Adam on the group's data (M = 1), one step at a
    time: inputs gathered and cast per step, as a DataLoader-free user loop does."""

    def __init__(self, family, g: StackedGroup):
        torch.manual_seed(0)
        self.family, self.models = family, 1
        self.net = plain_model(family, g)
        o = g.spec.optim
        self.opt = torch.optim.Adam(self.net.parameters(), lr=o.lr, eps=1e-7)
        self.X = g.X_train if g.X_train.dtype == torch.int64 else (g.X_train.float() * g.in_scale[0, 0]
                                                                      if g.X_train.dtype == torch.uint8 else g.X_train)
        self.y = g.y_train
        self.B, self.n = g.batch_size, g.n_train
        self.perm = torch.randperm(self.n)
        self.s = 0
        if family == "cv":
            self.Xv, self.yv = g.X_val, g.y_val

    def loss(self, x, y):
        if self.family in ("mdn", "cvae"):
            return self.net.loss(x, y)
        out = self.net(x)
        if self.family == "conv":
            return nn.functional.mse_loss(out, y)
        return nn.functional.cross_entropy(out, y)

    def step(self, idx):
        loss = self.loss(self.X[idx], self.y[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def burst(self, steps):
        for _ in range(steps):
            st = self.s % (self.n // self.B)
            self.step(self.perm[st * self.B:(st + 1) * self.B])
            self.s += 1


# -- real Keras


def keras_model(family, g: StackedGroup):
    import keras

    keras.utils.set_random_seed(0)
    s = g.spec
    L = keras.layers
    if family in ("mlp", "cv"):
        model = keras.Sequential([keras.Input((g.X_train.shape[1],)),
                                  *[L.Dense(h, activation="relu") for h in s.model.hidden],
                                  L.Dense(g.split.n_classes, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    elif family == "conv":
        c, h, w = g.image_shape
        model = keras.Sequential([keras.Input((c * h * w,)), L.Reshape((h, w, c)),
                                  *[L.Conv2D(k, s.model.kernel, padding="same", activation="relu") for k in s.model.conv],
                                  L.Conv2D(g.y_train.shape[1] // (h * w), s.model.kernel, padding="same"), L.Flatten()])
        loss = "mse"
    elif family == "lstm":
        emb, lstm = s.model.layers
        model = keras.Sequential([keras.Input((emb.get("steps", g.X_train.shape[1]),), dtype="int32"),
                                  L.Embedding(emb["vocab"], emb["dim"]), L.LSTM(lstm["units"]),
                                  L.Dense(g.split.n_classes, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    else:
        return None   # the trajectory models are not Keras layers: a Keras version would be our own code
    model.compile(optimizer=keras.optimizers.Adam(s.optim.lr), loss=loss)
    return model


class Keras:
    """model.fit over as many batches as the burst's steps (one epoch of a slice)."""

    def __init__(self, family, g: StackedGroup):
        self.model = keras_model(family, g)
        self.models = 1
        X = g.X_train.cpu().numpy()
        self.X = X.astype(np.float32) * float(g.in_scale[0, 0]) if X.dtype == np.uint8 else X
        self.y = g.y_train.cpu().numpy()
        self.B = g.batch_size
        if family == "cv":
            self.Xv, self.yv = g.X_val.cpu().numpy(), g.y_val.cpu().numpy()

    def burst(self, steps):
        n = steps * self.B
        self.model.fit(self.X[:n], self.y[:n], batch_size=self.B, epochs=1, verbose=0, shuffle=True)


# -- the cross-validated family: one outer fold's fit


def cv_trials(M: int):
    from scalelab._spec._trials import Trial
    from scalelab.studies._cv_specs import Specs, arm_specs

    spec = scalelab.builtin_spec("run-variance")
    arm = arm_specs(spec)["network"]
    fold = Specs(arm)(0, 0)
    return [Trial(study=spec.name, level=dict(arm="network", phase="outer", repeat=0, fold=0), seed=s, spec=fold)
            for s in range(M)]


class StackedFit:
    """scalelab: M seeds of one outer fold as the cross-validated study trains them."""

    def __init__(self, trials):
        self.trials, self.models = trials, len(trials)

    def burst(self, fits):
        from scalelab.studies._cv_fit import CVTrain

        for _ in range(fits):
            CVTrain(tuple(t.seed for t in self.trials))(self.trials)


class PlainFit(Plain):
    """A plain fold fit: the epochs' steps, each epoch's loss and accuracy on the fold's
    rows, then the fold's probabilities."""

    def __init__(self, g):
        super().__init__("cv", g)
        self.epochs = g.epochs

    def burst(self, fits):
        for _ in range(fits):
            for _ in range(self.epochs):
                perm = torch.randperm(self.n)
                for st in range(math.ceil(self.n / self.B)):
                    self.step(perm[st * self.B:(st + 1) * self.B])
                with torch.no_grad():
                    out = self.net(self.Xv)
                    nn.functional.cross_entropy(out, self.yv).item(), (out.argmax(1) == self.yv).float().mean().item()
            with torch.no_grad():
                torch.softmax(self.net(self.Xv).double(), -1).numpy()


class KerasFit(Keras):
    def __init__(self, g):
        super().__init__("cv", g)
        self.epochs = g.epochs

    def burst(self, fits):
        for _ in range(fits):
            self.model.fit(self.X, self.y, batch_size=self.B, epochs=self.epochs, verbose=0, shuffle=True,
                           validation_data=(self.Xv, self.yv))
            self.model.predict(self.Xv, verbose=0)


def runners_for(family: str, models: list[int], keras_ok: bool):
    if family == "cv":
        trials = cv_trials(max(models))
        g1 = StackedGroup(trials[:1])
        out = {"plain": PlainFit(g1)}
        if keras_ok:
            out["keras"] = KerasFit(g1)
        out.update({f"M={M}": StackedFit(trials[:M]) for M in models})
        return out, 1
    study, overrides, steps = FAMILIES[family]
    trials = study_trials(study, overrides, max(models))
    out = {}
    for M in models:
        out[f"M={M}"] = Stacked(trials[:M])
    g1 = out[f"M={models[0]}"].g if models[0] == 1 else StackedGroup(trials[:1], FMNIST)
    out = {"plain": Plain(family, g1), **out}
    if keras_ok and keras_model(family, g1) is not None:
        out["keras"] = Keras(family, g1)
    return out, steps


def time_family(family, models, reps, keras_ok, scale=1.0):
    runners, steps = runners_for(family, models, keras_ok)
    steps = max(1, round(steps * scale))
    for r in runners.values():          # warm-up: compiles, caches, allocator
        r.burst(steps)
    times = {k: [] for k in runners}
    for _ in range(reps):               # interleaved: every runner once per round
        for k, r in runners.items():
            t = time.perf_counter()
            r.burst(steps)
            times[k].append((time.perf_counter() - t) / (steps * r.models))
    per = {k: statistics.median(v) for k, v in times.items()}
    unit = "model-fit" if family == "cv" else "model-step"
    out = dict(unit=unit, steps_per_burst=steps, seconds_per=per, rounds=times,
               vs_plain={k: per["plain"] / per[k] for k in per if k.startswith("M=")})
    if "keras" in per:
        out["vs_keras"] = {k: per["keras"] / per[k] for k in per if k.startswith("M=")}
    return out


def profile(family, M, steps, sort="tottime", n=40):
    import cProfile
    import pstats

    runners, default_steps = runners_for(family, [M], keras_ok=False)
    r = runners[f"M={M}"]
    r.burst(default_steps)
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    r.burst(steps or default_steps)
    pr.disable()
    print(f"{family} M={M}: {(time.perf_counter() - t) / (steps or default_steps) * 1e3:.1f} ms per step (profiled)")
    pstats.Stats(pr).sort_stats(sort).print_stats(n)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        r.burst(steps or default_steps)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="mlp,conv,lstm,mdn,cvae,cv")
    ap.add_argument("--models", default="1,8,32")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the steps per burst")
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument("--profile", help="profile one family's stacked step (cProfile, then torch.profiler)")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    models = [int(m) for m in a.models.split(",")]
    if a.profile:
        profile(a.profile, models[-1], a.steps)
        return
    keras_ok = False
    if not a.no_keras:
        try:
            import keras  # noqa: F401
            keras_ok = True
        except ImportError:
            pass
    results = {}
    t0, load0 = time.time(), os.getloadavg()
    for fam in a.families.split(","):
        results[fam] = time_family(fam, models, a.reps, keras_ok, a.scale)
        r = results[fam]
        line = "  ".join(f"{k} {v:.1f}x" for k, v in r["vs_plain"].items())
        kline = "  ".join(f"{k} {v:.1f}x" for k, v in r.get("vs_keras", {}).items())
        print(f"{fam:5s} plain {r['seconds_per']['plain'] * 1e3:8.2f} ms/{r['unit']}  vs plain: {line}"
              + (f"  | vs keras: {kline}" if kline else ""), flush=True)
    out = dict(benchmark="families", command=" ".join(["python", *sys.argv]), torch=torch.__version__,
               threads=torch.get_num_threads(), cpus=os.cpu_count(), platform=platform.platform(),
               load_before=load0, load_after=os.getloadavg(), wall_s=round(time.time() - t0, 1), note=a.note,
               families=results)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
