"""VAE = encoder q_φ(z|x) + decoder p_θ(x|z) + prior p(z) + likelihood.

The model is an nnx.Module used only at the boundary: `nnx.split` gives (graphdef, params)
and everything jitted works on params (see train.py). Its methods are the building blocks
the objectives compose; they hold no RNG state, so every random draw takes an explicit key.
"""

from __future__ import annotations

import jax
from flax import nnx

from vae_jax.distributions import DiagGaussian
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.nets import NETS
from vae_jax.priors import PRIORS


class VAE(nnx.Module):
    def __init__(self, encoder, decoder, prior, likelihood_name: str, likelihood):
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.likelihood_name = likelihood_name
        self._likelihood = likelihood

    @property
    def likelihood(self):
        return self._likelihood

    def posterior(self, x: jax.Array) -> DiagGaussian:
        """q(z|x). x [B, H, W, C] -> DiagGaussian([B, D])."""
        return self.encoder(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """z [..., D] -> decoder_out [..., H, W, C * num_params]."""
        return self.decoder(z)

    def log_px(self, x: jax.Array, z: jax.Array) -> jax.Array:
        """log p(x|z). x [B, ...], z [..., B, D] -> [..., B]."""
        return self.likelihood.log_prob(self.decode(z), x)

    def log_prior(self, z: jax.Array) -> jax.Array:
        return self.prior.log_prob(z, encoder=self.encoder)

    def kl(self, q: DiagGaussian, z: jax.Array) -> jax.Array:
        """D_KL(q(z|x) || p(z)): closed form where the prior has one (broadcast to z's
        leading sample axes), else the Monte Carlo estimate log q(z) − log p(z). [..., B]"""
        analytic = self.prior.analytic_kl(q)
        if analytic is not None:
            return jax.numpy.broadcast_to(analytic, z.shape[:-1])
        return q.log_prob(z) - self.log_prior(z)

    def sample(self, key: jax.Array, num_samples: int, *, mean: bool = True) -> jax.Array:
        """Draw x from the model: z ~ p(z), then E[x|z] (mean=True) or x ~ p(x|z)."""
        kz, kx = jax.random.split(key)
        out = self.decode(self.prior.sample(kz, num_samples, encoder=self.encoder))
        return self.likelihood.mean(out) if mean else self.likelihood.sample(kx, out)

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """E[x | z = μ(x)]: the deterministic reconstruction used for figures."""
        return self.likelihood.mean(self.decode(self.posterior(x).loc))


def build_model(model_config, data_shape: tuple[int, ...], key: jax.Array) -> VAE:
    """Build a VAE from `config.model` for images of `data_shape` = (H, W, C)."""
    mc = model_config
    likelihood = LIKELIHOODS[mc.likelihood](mc)
    rngs = nnx.Rngs(params=key)
    encoder, decoder = NETS[mc.net](mc, tuple(data_shape), likelihood.num_params, rngs)
    prior = PRIORS[mc.prior](mc.latent_dim, rngs=rngs)
    return VAE(encoder, decoder, prior, mc.likelihood, likelihood)
