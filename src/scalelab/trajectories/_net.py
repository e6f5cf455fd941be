"""The trajectory models as layers written once per model (stacked by ``vmap``, gradients by
autograd), built from the shared :class:`~scalelab.models.Lstm`.

:class:`Seq2Seq`: an LSTM encoder reads the observed path (n_obs steps of 2); its last
hidden state, repeated, drives an LSTM decoder over the n_future steps (Keras's
RepeatVector pattern); each decoder step gives P outputs through one kernel shared over
steps, plus a per-step linear skip from the last two observed positions (so a straight
continuation is linear in the inputs, in whatever units they come). P is 2 for a point
prediction, G² logits for the grid softmax, 4·K for a mixture (means and log-stds per
component; its K mixing logits come from the encoder state).

:class:`Cvae`: a conditional VAE. Encoder as above gives h; a second LSTM reads the future
(training) and q(z | x, y) = N from [h, h_y]; the prior p(z | x) = N from h; the decoder
LSTM runs on [h, z] repeated, with the same per-step output. Outputs: the decoded path,
then KL(q ‖ p) per sample and the learned log σ of the observation noise (the loss reads
them). Without targets (sampling) z comes from the prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import Layer, Lstm, Param, init_kernel


def _as_one(params: list[Param]) -> list[Param]:
    """Every inner parameter under the composite layer's one per-layer multiplier (index 0)."""
    return [Param(q.name, q.shape, q.kernel, 0) for q in params]


# parameters are at most 2-D per model (the optimizer's per-model hyperparameters are (M, 1, 1)):
# the per-step skip kernel (T, 4, P) is stored as (T·4, P)


@dataclass(frozen=True)
class Seq2Seq(Layer):
    """LSTM encoder–decoder with per-step outputs; see the module docstring."""

    n_obs: int
    n_future: int
    units: int
    per_step: int                 # P outputs per future step
    mix: int = 0                  # K mixing logits from the encoder state (mixture head)
    index: int = 0
    kind = "seq2seq"
    weighted = True

    @property
    def enc(self) -> Lstm:
        return Lstm(0, 2 * self.n_obs, self.units, self.n_obs)

    @property
    def dec(self) -> Lstm:
        return Lstm(1, self.units * self.n_future, self.units, self.n_future, return_sequences=True)

    @property
    def weight(self) -> str:
        return self.enc.weight

    def params(self):
        H, T, P = self.units, self.n_future, self.per_step
        ps = [*self.enc.params(), *self.dec.params(), Param("out.W", (H, P), True, 0),
              Param("out.S", (T * 4, P)), Param("out.b", (T, P))]
        if self.mix:
            ps += [Param("mix.W", (H + 4, self.mix), True, 0), Param("mix.b", (1, self.mix))]
        return _as_one(ps)

    def init(self, rng, scheme, scale, bias_init):
        H, T, P = self.units, self.n_future, self.per_step
        p = {**self.enc.init(rng, scheme, scale, bias_init), **self.dec.init(rng, scheme, 1.0, bias_init),
             "out.W": init_kernel(scheme, H, P, rng), "out.S": np.zeros((T * 4, P)), "out.b": np.zeros((T, P))}
        if self.mix:
            p["mix.W"] = init_kernel(scheme, H + 4, self.mix, rng)
            p["mix.b"] = np.zeros((1, self.mix))
        return p

    def trunk_one(self, params, x):
        """Encoder state h (b, H) and decoder outputs (b, T, P) of one model."""
        b, T = x.shape[0], self.n_future
        h = self.enc.forward_one(params, x)
        seq = self.dec.forward_one(params, h.repeat(1, T)).reshape(b, T, self.units)
        ctx = x[:, -4:]                                   # the last two observed positions
        out = seq @ params["out.W"] + torch.einsum("bc,tcp->btp", ctx, params["out.S"].reshape(T, 4, -1)) + params["out.b"]
        return h, out

    def forward_one(self, params, x):
        h, out = self.trunk_one(params, x)
        out = out.reshape(x.shape[0], -1)
        if self.mix:
            logits = torch.cat([h, x[:, -4:]], 1) @ params["mix.W"] + params["mix.b"]
            out = torch.cat([logits, out], 1)
        return out

    def n_out(self, n_in):
        return self.mix + self.n_future * self.per_step


@dataclass(frozen=True)
class Cvae(Layer):
    """Conditional VAE over future paths; see the module docstring."""

    n_obs: int
    n_future: int
    units: int
    latent: int
    index: int = 0
    kind = "cvae"
    weighted = True

    @property
    def enc(self) -> Lstm:
        return Lstm(0, 2 * self.n_obs, self.units, self.n_obs)

    @property
    def post(self) -> Lstm:
        return Lstm(2, 2 * self.n_future, self.units, self.n_future)

    @property
    def dec(self) -> Lstm:
        return Lstm(1, (self.units + self.latent) * self.n_future, self.units, self.n_future, return_sequences=True)

    @property
    def weight(self) -> str:
        return self.enc.weight

    def params(self):
        H, T, L = self.units, self.n_future, self.latent
        return _as_one([*self.enc.params(), *self.post.params(), *self.dec.params(),
                        Param("q.W", (2 * H, 2 * L), True, 0), Param("q.b", (1, 2 * L)),
                        Param("prior.W", (H, 2 * L), True, 0), Param("prior.b", (1, 2 * L)),
                        Param("out.W", (H, 2), True, 0), Param("out.S", (T * 4, 2)), Param("out.b", (T, 2)),
                        Param("log_sigma", (1, 1))])

    def init(self, rng, scheme, scale, bias_init):
        H, T, L = self.units, self.n_future, self.latent
        return {**self.enc.init(rng, scheme, scale, bias_init), **self.post.init(rng, scheme, 1.0, bias_init),
                **self.dec.init(rng, scheme, 1.0, bias_init),
                "q.W": init_kernel(scheme, 2 * H, 2 * L, rng), "q.b": np.zeros((1, 2 * L)),
                "prior.W": init_kernel(scheme, H, 2 * L, rng), "prior.b": np.zeros((1, 2 * L)),
                "out.W": init_kernel(scheme, H, 2, rng), "out.S": np.zeros((T * 4, 2)), "out.b": np.zeros((T, 2)),
                "log_sigma": np.zeros((1, 1))}

    # the pieces, each for one model
    def encode_one(self, params, x):
        """h (b, H) and the prior's mean and log-variance (b, L) each."""
        h = self.enc.forward_one(params, x)
        mu, logvar = (h @ params["prior.W"] + params["prior.b"]).chunk(2, dim=1)
        return h, mu, logvar

    def decode_one(self, params, x, h, z):
        """The path (b, T·2) decoded from h and z."""
        b, T = x.shape[0], self.n_future
        seq = self.dec.forward_one(params, torch.cat([h, z], 1).repeat(1, T)).reshape(b, T, self.units)
        out = seq @ params["out.W"] + torch.einsum("bc,tcp->btp", x[:, -4:], params["out.S"].reshape(T, 4, -1)) + params["out.b"]
        return out.reshape(b, -1)

    def _one(self, params, x, y, eps):
        h, mu_p, lv_p = self.encode_one(params, x)
        if y is None:
            z, kl = mu_p + torch.exp(0.5 * lv_p) * eps, x.new_zeros(x.shape[0], 1)
        else:
            hy = self.post.forward_one(params, y)
            mu_q, lv_q = (torch.cat([h, hy], 1) @ params["q.W"] + params["q.b"]).chunk(2, dim=1)
            z = mu_q + torch.exp(0.5 * lv_q) * eps
            # KL(N(mu_q, e^lv_q) ‖ N(mu_p, e^lv_p)), summed over z's dimensions
            kl = 0.5 * (lv_p - lv_q + (torch.exp(lv_q) + (mu_q - mu_p) ** 2) / torch.exp(lv_p) - 1).sum(1, keepdim=True)
        path = self.decode_one(params, x, h, z)
        return torch.cat([path, kl, params["log_sigma"].expand(x.shape[0], 1)], 1)

    def forward_one(self, params, x, y=None, eps=None):
        if eps is None:
            eps = x.new_zeros(x.shape[0], self.latent)
        return self._one(params, x, y, eps)

    def forward(self, params, x, p):
        own = {q.name: params[q.name] for q in self.params()}
        M, b = x.shape[:2]
        eps = p.noise((b, self.latent)).to(x) if p.noise is not None else x.new_zeros(M, b, self.latent)
        if p.targets is None:
            return torch.func.vmap(lambda q, xx, e: self._one(q, xx, None, e))(own, x, eps)
        return torch.func.vmap(self._one)(own, x, p.targets, eps)

    def n_out(self, n_in):
        return 2 * self.n_future + 2
