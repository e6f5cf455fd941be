"""The four trajectory models as registered losses (``loss.name``): each builds its model
(``model.kind = "trajectory"``), gives its per-sample training loss, and turns its outputs
into what the metrics compare — a best single prediction, K sampled futures, a density on
the grid per future step and a predicted mass per branch — in the data's original units.

* ``trajectory_mse``: the deterministic encoder–decoder, MSE on positions (it learns the
  conditional mean: between the branches). Its grid density is a Gaussian around the
  prediction with the per-coordinate error variance it has on the validation set (the
  maximum-likelihood noise of an MSE fit); its K samples are the prediction repeated.
* ``grid_softmax``: the thread's idea, a softmax over G×G cells per future step (cross
  entropy on the true cell); density direct; samples: a cell centre per step from that
  step's heatmap, steps drawn independently (the model has no joint over steps, so a sampled
  path may switch branches mid-way: its minADE_K does not compare with the others', its
  minFDE_K does; see :mod:`._metrics`).
* ``mdn_nll``: K Gaussian components over the whole future path, NLL; density by exact
  integration over the cells; samples from the mixture.
* ``cvae_elbo``: the answer's idea, an LSTM conditional VAE trained on the negative ELBO
  (Gaussian decoder with a learned σ); density and masses from ``density_samples`` futures
  decoded from prior draws of z.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._losses import register_loss
from ..models import Model
from ._net import Cvae, Seq2Seq

LOG_SIGMA_BOUND = 7.0   # log σ of the mixture lives in ±7 (σ from 1e-3 to 1e3 units): bounded, never 0
DRAW_STREAM = 23        # the sampling draws' stream tag: default_rng([trial seed, 23, row])


class _Head:
    name = ""

    def __init__(self, group):
        self.g = group
        tr = group.spec.trajectory
        if tr is None or group.spec.data.dataset != "trajectories":
            raise ValueError(f"loss.name = {self.name!r} predicts trajectories: set data.dataset = 'trajectories' "
                             f"(and model.kind = 'trajectory')")
        if group.spec.model.kind != "trajectory":
            raise ValueError(f"loss.name = {self.name!r} needs its own model: set model.kind = 'trajectory'")
        self.tr, self.T = tr, tr.n_future
        # the grid's box: the generator's map, or a user file's (inferred from its data, see load_trajectory_file)
        tmap = group.dataset_meta.get("trajectory", {}).get("map")
        self.lo, self.hi = tmap.coord_range if tmap is not None else tr.coord_range
        self.G = tr.grid_size
        self.val_rmse = None

    # -- units
    def orig_path(self, out_path: torch.Tensor) -> torch.Tensor:
        """(M, b, T·2) in training units → (M, b, T, 2) original units."""
        return self.g.to_original(out_path).reshape(*out_path.shape[:2], self.T, 2)

    def orig_scale(self) -> torch.Tensor:
        """Original units per training unit, (M, 1, T, 2) (1 without a target transform)."""
        if self.g.t_scale is None:
            return torch.ones(self.g.M, 1, self.T, 2, dtype=self.g.dtype, device=self.g.device)
        return (1.0 / self.g.t_scale).reshape(self.g.M, 1, self.T, 2)

    # -- randomness of the sampled predictions
    def row_draws(self, rows, draw) -> tuple[np.ndarray, ...]:
        """``draw(rng)`` (a tuple of arrays) for every model and row, each stacked to
        (M, b, ...). Model m's row r draws from its own stream ``default_rng([seed_m, 23, r])``:
        a row's draws depend on neither the chunk it is decoded in nor the other rows (one
        generator per chunk would give rows i and i + chunk the same draws and correlate
        the sampled metrics across chunks), nor on the group the trial trains in."""
        per = [[draw(np.random.default_rng([t.seed, DRAW_STREAM, int(r)])) for r in rows] for t in self.g.trials]
        return tuple(np.stack([np.stack([d[j] for d in model]) for model in per]) for j in range(len(per[0][0])))

    # -- what every head gives the metrics, for one chunk: numpy arrays in original units
    def decode(self, x: torch.Tensor, out: torch.Tensor, k: int, rows: np.ndarray) -> dict:
        """``point`` (M, b, T, 2), ``samples`` (M, b, k, T, 2), ``cells`` (M, b, T, G²)
        (cell masses, not yet normalised) and ``final`` (M, b, S, 2) final positions behind
        the branch masses (None: take them from the last step's cells). ``rows``: the
        evaluated set's row of every input, which seeds its draws (:meth:`row_draws`)."""
        raise NotImplementedError

    def evaluate(self, X, y):
        from ._evaluate import evaluate_head

        return evaluate_head(self, X, y)


@register_loss("trajectory_mse")
class PointHead(_Head):
    name = "trajectory_mse"

    def build_model(self, n_in):
        return Model([Seq2Seq(self.tr.n_obs, self.T, self.tr.units, 2)])

    def per_sample(self, out, y):
        return (out - y).pow(2).mean(-1)

    def decode(self, x, out, k, rows):
        point = self.orig_path(out).double().cpu().numpy()
        sigma = self.val_rmse if self.val_rmse is not None else np.ones(point.shape[0])
        from ._metrics import gaussian_cell_probs

        cells = gaussian_cell_probs(point, np.broadcast_to(sigma[:, None, None, None], point.shape), self.lo,
                                    self.hi, self.G)
        return dict(point=point, samples=np.repeat(point[:, :, None], k, 2), cells=cells, final=point[:, :, None, -1])


@register_loss("grid_softmax")
class GridHead(_Head):
    name = "grid_softmax"

    def build_model(self, n_in):
        return Model([Seq2Seq(self.tr.n_obs, self.T, self.tr.units, self.G * self.G)])

    def cells_of(self, y: torch.Tensor) -> torch.Tensor:
        """The true cell of every future step, (M, b, T), of targets in training units."""
        p = self.g.to_original(y).reshape(*y.shape[:2], self.T, 2)
        ij = torch.clamp(torch.floor((p - self.lo) / (self.hi - self.lo) * self.G), 0, self.G - 1).long()
        return ij[..., 1] * self.G + ij[..., 0]

    def per_sample(self, out, y):
        logits = out.reshape(*out.shape[:2], self.T, self.G * self.G)
        logp = torch.log_softmax(logits, -1)
        return -logp.gather(-1, self.cells_of(y).unsqueeze(-1)).squeeze(-1).mean(-1)

    def decode(self, x, out, k, rows):
        from ._metrics import cell_centres

        M, b = out.shape[:2]
        probs = torch.softmax(out.reshape(M, b, self.T, self.G * self.G).double(), -1).cpu().numpy()
        cc = cell_centres(self.lo, self.hi, self.G)
        point = cc[probs.argmax(-1)]                                              # (M, b, T, 2)
        # every step's cell drawn from that step's own heatmap, independently: the model has
        # per-step marginals only, no joint over steps (see _metrics on minADE_K)
        (u,) = self.row_draws(rows, lambda rng: (rng.uniform(size=(k, self.T)),))      # (M, b, k, T)
        cum = np.cumsum(probs, -1)
        samples = np.stack([cc[np.minimum((cum < u[:, :, s, :, None]).sum(-1), self.G ** 2 - 1)]
                            for s in range(k)], 2)
        return dict(point=point, samples=samples, cells=probs, final=None)


@register_loss("mdn_nll")
class MixtureHead(_Head):
    name = "mdn_nll"

    @property
    def K(self):
        return self.tr.components

    def build_model(self, n_in):
        return Model([Seq2Seq(self.tr.n_obs, self.T, self.tr.units, 4 * self.K, mix=self.K)])

    def split(self, out):
        """log π (M, b, K), μ and log σ (M, b, K, T, 2) in training units."""
        M, b, K = *out.shape[:2], self.K
        logpi = torch.log_softmax(out[..., :K], -1)
        per = out[..., K:].reshape(M, b, self.T, K, 4).permute(0, 1, 3, 2, 4)
        mu, raw = per[..., :2], per[..., 2:]
        return logpi, mu, LOG_SIGMA_BOUND * torch.tanh(raw / LOG_SIGMA_BOUND)

    def per_sample(self, out, y):
        logpi, mu, logsig = self.split(out)
        yy = y.reshape(*y.shape[:2], 1, self.T, 2)
        logn = (-0.5 * ((yy - mu) / logsig.exp()) ** 2 - logsig - 0.5 * math.log(2 * math.pi)).sum((-1, -2))
        return -torch.logsumexp(logpi + logn, -1) / (2 * self.T)

    def decode(self, x, out, k, rows):
        from ._metrics import gaussian_cell_probs

        logpi, mu, logsig = self.split(out)
        M, b = out.shape[:2]
        scale = self.orig_scale()[:, :, None]                                     # (M, 1, 1, T, 2)
        mu = self.g.to_original(mu.reshape(M, b * self.K, -1)).reshape(mu.shape).double().cpu().numpy()
        sig = (logsig.exp() * scale).double().cpu().numpy()
        pi = logpi.exp().double().cpu().numpy()
        best = pi.argmax(-1)
        point = np.take_along_axis(mu, best[:, :, None, None, None], 2)[:, :, 0]
        u, z = self.row_draws(rows, lambda rng: (rng.uniform(size=(k, 1)), rng.normal(size=(k, self.T, 2))))
        comp = (u > np.cumsum(pi, -1)[:, :, None]).sum(-1).clip(0, self.K - 1)
        take = lambda a: np.take_along_axis(a, comp[..., None, None], 2)           # (M, b, k, T, 2)
        samples = take(mu) + take(sig) * z
        cells = (pi[..., None, None] * gaussian_cell_probs(mu, sig, self.lo, self.hi, self.G)).sum(2)
        return dict(point=point, samples=samples, cells=cells, final=None)


@register_loss("cvae_elbo")
class CvaeHead(_Head):
    name = "cvae_elbo"

    def build_model(self, n_in):
        return Model([Cvae(self.tr.n_obs, self.T, self.tr.units, self.tr.latent)])

    def per_sample(self, out, y):
        mean, kl, logsig = out[..., :2 * self.T], out[..., 2 * self.T], out[..., 2 * self.T + 1]
        nll = (0.5 * (y - mean) ** 2 / torch.exp(2 * logsig[..., None]) + logsig[..., None]
               + 0.5 * math.log(2 * math.pi)).sum(-1)
        return (nll + kl) / (2 * self.T)

    @torch.no_grad()
    def decode(self, x, out, k, rows):
        from ._metrics import histogram_cell_probs

        layer: Cvae = self.g.model.layers[0]
        own = {q.name: self.g.params[q.name] for q in layer.params()}
        M, b = x.shape[:2]
        h, mu, logvar = torch.func.vmap(layer.encode_one)(own, x)
        dec = torch.func.vmap(layer.decode_one)
        S = max(k, self.tr.density_samples)
        (eps,) = self.row_draws(rows, lambda rng: (rng.standard_normal((S, layer.latent)),))  # (M, b, S, latent)
        eps = torch.as_tensor(eps, dtype=x.dtype, device=x.device).permute(2, 0, 1, 3)
        point = self.orig_path(dec(own, x, h, mu)).double().cpu().numpy()
        draws = [self.orig_path(dec(own, x, h, mu + torch.exp(0.5 * logvar) * eps[s])).double().cpu().numpy()
                 for s in range(S)]
        samples = np.stack(draws, 2)                                              # (M, b, S, T, 2)
        cells = np.stack([histogram_cell_probs(samples[:, :, :, t], self.lo, self.hi, self.G)
                          for t in range(self.T)], 2)
        return dict(point=point, samples=samples[:, :, :k], cells=cells, final=samples[:, :, :, -1])
