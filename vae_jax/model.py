"""VAE = encoder q_φ(z|x) + decoder p_θ(x|z) + prior p(z) + likelihood.

The model is an nnx.Module used only at the boundary. `split_model` separates what the
optimizer trains (`nnx.Param`) from the state the model carries (batch statistics, and any
other non-Param variable), which the train step updates and never differentiates;
`merge_model(graphdef, *states, train=...)` rebuilds it inside a traced function in train
or eval mode (BatchNorm's running averages, Dropout off). Its methods are the building
blocks the objectives and evaluators compose; they hold no RNG state, so every random draw
takes an explicit key.

The latent may be a pytree of per-layer distributions (two stochastic layers, say): the
posterior q is a pytree of DiagGaussian leaves, z a pytree of arrays of the same structure,
and `sample_latent`, `log_posterior`, `log_prior` and `kl` reduce over every layer.
`latent_layers(q)` names the layers, for evaluators that measure one of them.

A *hierarchical* model (`model.net=mlp2`: two stochastic layers, Burda et al. 2015) has a
posterior whose upper layer depends on the sampled lower one, and a prior p(z2) p(z1|z2).
Its encoder offers `sample_latent` and `log_posterior`, and its decoder
`conditional_prior(z2)` = p(z1|z2); the VAE's methods call them, so every objective and
evaluator that samples z and scores log q and log p works on it unchanged. Its KL is the
Monte Carlo estimate, and `model.prior` is p(z2), the top layer's prior.
"""

from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp
from flax import nnx

from vae_jax.components import Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.nets import NETS
from vae_jax.priors import PRIORS

_is_gaussian = lambda leaf: isinstance(leaf, DiagGaussian)


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

    @property
    def hierarchical(self) -> bool:
        """Whether q and p are chains of layers (the encoder samples and scores them)."""
        return hasattr(self.encoder, "log_posterior")

    @property
    def latent_dim(self) -> int:
        """The latent size over every layer."""
        return sum(self.latent_dims.values())

    @property
    def latent_dims(self) -> dict[str, int]:
        """Each latent layer's size, in latent_layers order ({"z": D} for one layer)."""
        if self.hierarchical:
            return dict(zip(("z1", "z2"), self.encoder.latent_dims, strict=True))
        return {"z": self.prior.latent_dim}

    def posterior(self, x: jax.Array):
        """q(z|x). x [B, H, W, C] -> DiagGaussian([B, D]) (a pytree of them in general)."""
        return self.encoder(x)

    def latent_layers(self, q) -> dict[str, DiagGaussian]:
        """The posterior's layers by name, in a fixed order: {"z": q} for a one-layer model,
        the dict keys (or tree paths, joined by "/") for a tree of them."""
        if _is_gaussian(q):
            return {"z": q}
        leaves = jax.tree_util.tree_leaves_with_path(q, is_leaf=_is_gaussian)
        return {_path_name(path): leaf for path, leaf in leaves}

    def posterior_mean(self, q):
        """μ(x): the mean of every layer of q, in q's structure."""
        return jax.tree.map(lambda d: d.loc, q, is_leaf=_is_gaussian)

    def sample_latent(self, q, key: jax.Array, num_samples: int | None = None):
        """Reparameterized z ~ q, one independent key per layer (ancestrally for a
        hierarchical model). Leaves [(n,) B, D]."""
        if self.hierarchical:
            return self.encoder.sample_latent(q, key, num_samples)
        leaves, treedef = jax.tree.flatten(q, is_leaf=_is_gaussian)
        if len(leaves) == 1:  # one layer: the key itself (keeps single-layer draws stable)
            return jax.tree.unflatten(treedef, [leaves[0].sample(key, num_samples)])
        keys = jax.random.split(key, len(leaves))
        return jax.tree.unflatten(
            treedef, [d.sample(k, num_samples) for d, k in zip(leaves, keys, strict=True)]
        )

    def log_posterior(self, q, z) -> jax.Array:
        """log q(z|x) summed over layers and latent dimensions. [..., B]"""
        if self.hierarchical:
            return self.encoder.log_posterior(q, z)
        terms = jax.tree.map(lambda d, zl: d.log_prob(zl), q, z, is_leaf=_is_gaussian)
        return functools.reduce(operator.add, jax.tree.leaves(terms))

    def decode(self, z) -> jax.Array:
        """z [..., D] -> decoder_out [..., H, W, C * num_params]."""
        return self.decoder(z)

    def log_px(self, x: jax.Array, z) -> jax.Array:
        """log p(x|z). x [B, ...], z [..., B, D] -> [..., B]."""
        return self.likelihood.log_prob(self.decode(z), x)

    def log_prior(self, z) -> jax.Array:
        """log p(z) [..., B]; for a hierarchical model log p(z2) + log p(z1|z2)."""
        if self.hierarchical:
            top = self.prior.log_prob(z["z2"], encoder=self.encoder)
            return top + self.decoder.conditional_prior(z["z2"]).log_prob(z["z1"])
        return self.prior.log_prob(z, encoder=self.encoder)

    def layer_means(self, q, key: jax.Array, num_samples: int = 100):
        """E_q[z_l | x] of every layer, in q's structure: the means of q's leaves, or for a
        hierarchical model the encoder's (a Monte Carlo mean for the upper layer)."""
        if self.hierarchical:
            return self.encoder.layer_means(q, key, num_samples)
        return self.posterior_mean(q)

    def sample_prior_latent(self, key: jax.Array, num_samples: int, temperature: float = 1.0):
        """z ~ p(z): the prior's draw, or for a hierarchical model z2 ~ p(z2) (at the
        temperature) and then z1 ~ p(z1|z2), as a tree."""
        if not self.hierarchical:  # the key itself: one-layer draws stay as they were
            return self.prior.sample(
                key, num_samples, encoder=self.encoder, temperature=temperature
            )
        kz, kb = jax.random.split(key)
        top = self.prior.sample(kz, num_samples, encoder=self.encoder, temperature=temperature)
        return self.decoder.sample_below(top, kb)

    def log_prior_fn(self):
        """log p(z) as a function of z, with whatever the prior computes from the model
        done once: a prior with `bind(encoder)` (the VampPrior: its pseudo-inputs'
        posteriors) returns it; otherwise model.log_prior. For loops over many z."""
        bind = None if self.hierarchical else getattr(self.prior, "bind", None)
        return bind(self.encoder) if bind is not None else self.log_prior

    def analytic_kl(self, q) -> jax.Array | None:
        """The closed-form D_KL(q(z|x) || p(z)) [B], or None where there is none (a prior
        without one, or a hierarchical model, whose p(z1|z2) depends on the sampled z2)."""
        return None if self.hierarchical else self.prior.analytic_kl(q)

    def kl(self, q, z) -> jax.Array:
        """D_KL(q(z|x) || p(z)): closed form where the prior has one (broadcast to z's
        leading sample axes), else the Monte Carlo estimate log q(z) − log p(z). [..., B]"""
        analytic = self.analytic_kl(q)
        lead = jax.tree.leaves(z)[0].shape[:-1]
        if analytic is not None:
            return jnp.broadcast_to(analytic, lead)
        return self.log_posterior(q, z) - self.log_prior(z)

    def sample(
        self, key: jax.Array, num_samples: int, *, mean: bool = True, temperature: float = 1.0
    ) -> jax.Array:
        """Draw x from the model: z ~ p_T(z) (the prior at temperature T, as the prior
        defines it; ancestrally for a hierarchical model), then E[x|z] (mean=True) or
        x ~ p(x|z)."""
        kz, kx = jax.random.split(key)
        z = self.sample_prior_latent(kz, num_samples, temperature)
        out = self.decode(z)
        return self.likelihood.mean(out) if mean else self.likelihood.sample(kx, out)

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """E[x | z = μ(x)]: the deterministic reconstruction used for figures."""
        q = self.posterior(x)
        return self.likelihood.mean(
            self.decode(jax.tree.map(lambda d: d.loc, q, is_leaf=_is_gaussian))
        )


def _path_name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return "/".join(parts)


def build_model(model_config, spec, key: jax.Array | None = None) -> VAE:
    """Build a VAE from `config.model`, each part from its own sub-section
    (config.model.<net>, config.model.<likelihood>, config.model.<prior>).

    `spec` is a components.Spec, or just the data shape (H, W, C) together with `key`:
    `build_model(config.model, (28, 28, 1), jax.random.key(0))`."""
    mc = model_config
    if not isinstance(spec, Spec):
        spec = Spec(tuple(spec), num_train=None, batch_size=None, latent_dim=mc.latent_dim, key=key)
    # One key per part: the nets take spec.key itself, the others keys folded out of it.
    likelihood_spec = spec._replace(key=jax.random.fold_in(spec.key, 2))
    likelihood = LIKELIHOODS[mc.likelihood].make(mc[mc.likelihood], likelihood_spec)
    spec = spec._replace(latent_dim=mc.latent_dim, num_params=likelihood.num_params)
    encoder, decoder = NETS[mc.net].make(mc[mc.net], spec)
    # The prior is over the top layer: z2 of a hierarchical net, else the one latent.
    top = getattr(decoder, "top_latent_dim", spec.latent_dim)
    prior_spec = spec._replace(key=jax.random.fold_in(spec.key, 1), latent_dim=top)
    prior = PRIORS[mc.prior].make(mc[mc.prior], prior_spec)
    return VAE(encoder, decoder, prior, mc.likelihood, likelihood)


def split_model(model: nnx.Module):
    """(graphdef, params, model_state): the trained nnx.Param leaves, and everything else
    the model carries (batch statistics, ...), which is updated but never trained."""
    return nnx.split(model, nnx.Param, ...)


def merge_model(graphdef, *states, train: bool = False) -> nnx.Module:
    """The model from its graphdef and states, in train or eval mode (BatchNorm uses its
    batch or its running statistics; Dropout is on or off)."""
    model = nnx.merge(graphdef, *states, copy=True)  # fresh Variables at this trace level
    if train:
        model.train()
    else:
        model.eval()
    return model


def full_state(params, model_state) -> nnx.State:
    """params and model_state as one State: what evaluation needs to rebuild the model."""
    return nnx.merge_state(params, model_state)
