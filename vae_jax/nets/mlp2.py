"""Two stochastic layers: the fully connected VAE of Burda et al. 2015, §5 (Table 1, "2 layers").

Inference network and generative network, each a chain of diagonal Gaussians:

    q(z1, z2 | x) = q(z1 | x) · q(z2 | z1),        x → 200 → 200 → z1 (100) → 100 → 100 → z2 (50)
    p(x, z1, z2)  = p(z2) · p(z1 | z2) · p(x | z1),  z2 → 100 → 100 → z1 → 200 → 200 → x

with tanh hidden units (Burda et al.'s widths are the defaults; `model.latent_dim` is z1's
size and `model.mlp2.top_latent_dim` z2's). p(z2) is the model's prior (`model.prior`:
standard_normal, mog or flow, over z2); p(z1 | z2) lives in the decoder.

The posterior is not a product of independent layers: z2's Gaussian depends on the sampled
z1. The encoder therefore offers the two hooks the VAE asks of a hierarchical encoder,
`sample_latent(q, key, n)` (ancestral: z1 ~ q(z1|x), then z2 ~ q(z2|z1)) and
`log_posterior(q, z)`; the decoder offers `conditional_prior(z2)` = p(z1 | z2) and
`sample_below(z2, key)`. The encoder's output `q` is the tree
{"z1": q(z1|x), "z2": q(z2 | z1 = μ1(x))}: the first layer exactly, the second at the first
layer's mean, which is what the deterministic paths (reconstructions, traversals, the
autoencoder) and the per-layer summaries read. Every number that is a bound or an estimate
of log p(x) goes through the hooks instead, so it uses the true q(z2|z1).

The decoder reads z1 only (p(x | z1, z2) = p(x | z1)); it accepts the tree or a bare z1
array, so figures that walk the first layer decode it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.errors import check_choice, check_positive_int, check_positive_ints
from vae_jax.nets.activations import ACTIVATIONS

LAYERS = ("z1", "z2")


class GaussianMLP(nnx.Module):
    """h [..., n_in] -> DiagGaussian([..., n_out]) through hidden layers (the stochastic
    layer of Burda et al.: a deterministic MLP that outputs μ and log σ)."""

    def __init__(self, n_in, n_out, hidden_dims: Sequence[int], activation, *, rngs, dtype=None):
        sizes = [n_in, *hidden_dims]
        linear = lambda a, b: nnx.Linear(a, b, dtype=dtype, rngs=rngs)  # params stay float32
        self.hidden = nnx.List([linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.out = nnx.Linear(sizes[-1], 2 * n_out, rngs=rngs)  # float32: μ, log σ
        self.activation = activation

    def __call__(self, h: jax.Array) -> DiagGaussian:
        act = ACTIVATIONS[self.activation]
        for layer in self.hidden:
            h = act(layer(h))
        loc, log_scale = jnp.split(self.out(h).astype(jnp.float32), 2, axis=-1)
        return DiagGaussian(loc, log_scale)


class TwoLayerEncoder(nnx.Module):
    """x [B, H, W, C] -> {"z1": q(z1|x), "z2": q(z2|μ1(x))}, with the hierarchical hooks."""

    def __init__(self, input_shape, dims, hidden, top_hidden, activation, *, rngs, dtype=None):
        self.bottom = GaussianMLP(
            math.prod(input_shape), dims[0], hidden, activation, rngs=rngs, dtype=dtype
        )
        self.top = GaussianMLP(dims[0], dims[1], top_hidden, activation, rngs=rngs, dtype=dtype)
        self.input_ndim = len(input_shape)
        self.latent_dims = tuple(dims)  # (D1, D2)

    def __call__(self, x: jax.Array) -> dict[str, DiagGaussian]:
        q1 = self.bottom(x.reshape(*x.shape[: x.ndim - self.input_ndim], -1))
        return {"z1": q1, "z2": self.top(q1.loc)}

    def sample_latent(self, q, key: jax.Array, num_samples: int | None = None) -> dict:
        """z1 ~ q(z1|x), then z2 ~ q(z2|z1): leaves [(n,) B, D_l], reparameterized."""
        k1, k2 = jax.random.split(key)
        z1 = q["z1"].sample(k1, num_samples)
        return {"z1": z1, "z2": self.top(z1).sample(k2)}

    def log_posterior(self, q, z) -> jax.Array:
        """log q(z1|x) + log q(z2|z1). [..., B]"""
        return q["z1"].log_prob(z["z1"]) + self.top(z["z1"]).log_prob(z["z2"])

    def layer_means(self, q, key: jax.Array, num_samples: int) -> dict[str, jax.Array]:
        """E_q[z_l | x] per layer: μ1(x) exactly; E[z2|x] = E_{z1~q(z1|x)}[μ2(z1)] by
        Monte Carlo over `num_samples` draws of z1 (Burda et al.'s active units)."""
        z1 = q["z1"].sample(key, num_samples)  # [S, B, D1]
        return {"z1": q["z1"].loc, "z2": self.top(z1).loc.mean(axis=0)}


class TwoLayerDecoder(nnx.Module):
    """p(z1 | z2) and p(x | z1): z [..., D] (the tree, or z1 alone) -> decoder_out."""

    def __init__(self, output_shape, dims, hidden, top_hidden, activation, *, rngs, dtype=None):
        tops = tuple(reversed(tuple(top_hidden)))
        self.top = GaussianMLP(dims[1], dims[0], tops, activation, rngs=rngs, dtype=dtype)
        sizes = [dims[0], *reversed(tuple(hidden))]
        linear = lambda a, b: nnx.Linear(a, b, dtype=dtype, rngs=rngs)
        self.hidden = nnx.List([linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.out = nnx.Linear(sizes[-1], math.prod(output_shape), rngs=rngs)  # float32 logits
        self.activation = activation
        self.output_shape = tuple(output_shape)
        self.top_latent_dim = dims[1]

    def conditional_prior(self, z2: jax.Array) -> DiagGaussian:
        """p(z1 | z2). z2 [..., D2] -> DiagGaussian([..., D1])"""
        return self.top(z2)

    def sample_below(self, z2: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
        """The ancestral draw under a top-layer sample: z1 ~ p(z1 | z2)."""
        return {"z1": self.top(z2).sample(key), "z2": z2}

    def __call__(self, z) -> jax.Array:
        z1 = z["z1"] if isinstance(z, dict) else z
        act = ACTIVATIONS[self.activation]
        h = z1
        for layer in self.hidden:
            h = act(layer(h))
        return self.out(h).astype(jnp.float32).reshape(*z1.shape[:-1], *self.output_shape)


def make(section, spec: Spec):
    out_shape = (*spec.data_shape[:-1], spec.data_shape[-1] * spec.num_params)
    dims = (spec.latent_dim, int(section.top_latent_dim))
    hidden, top = tuple(section.hidden_dims), tuple(section.top_hidden_dims)
    act, rngs, dtype = section.activation, nnx.Rngs(params=spec.key), spec.dtype
    return (
        TwoLayerEncoder(spec.data_shape, dims, hidden, top, act, rngs=rngs, dtype=dtype),
        TwoLayerDecoder(out_shape, dims, hidden, top, act, rngs=rngs, dtype=dtype),
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.hidden_dims = (200, 200)  # x ↔ z1 (Burda et al. 2015, §5); the decoder mirrors them
    c.top_hidden_dims = (100, 100)  # z1 ↔ z2
    c.top_latent_dim = 50  # z2's size; model.latent_dim is z1's (100 in Burda et al.)
    c.activation = "tanh"
    return c


def validate(section, spec=None) -> None:
    del spec
    check_positive_ints(section, "hidden_dims", "model.mlp2", allow_empty=True)
    check_positive_ints(section, "top_hidden_dims", "model.mlp2", allow_empty=True)
    check_positive_int(section, "top_latent_dim", "model.mlp2")
    check_choice(section, "activation", "model.mlp2", ACTIVATIONS)


def describe(section, name: str) -> str:
    return (
        f"{name} {tuple(section.hidden_dims)} → z1, {tuple(section.top_hidden_dims)} → "
        f"z2 ({section.top_latent_dim})"
    )


COMPONENT = Component(
    make, defaults, validate, traits=frozenset({"hierarchical"}), describe=describe
)
