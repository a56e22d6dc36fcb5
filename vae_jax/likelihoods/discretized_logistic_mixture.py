"""Mixture of discretized logistics for 8-bit images (Salimans et al. 2017, "PixelCNN++",
§2.1, eq. 2), per pixel and channel:

    P(x = k/255 | z) = Σ_m π_m·[σ((e⁺_k − μ_m)/s_m) − σ((e⁻_k − μ_m)/s_m)],  m = 1..M,

with the bins, edges, log-scale floor and stable log-mass of discretized_logistic.py (bin 0
down to −∞, bin 255 up to +∞), so the 256 masses sum to Σ_m π_m = 1. log P is
logsumexp_m(log_softmax(logits)_m + log P_m), never a sum of rounded probabilities.

Channels are independent given z. PixelCNN++ couples an RGB pixel's channels by shifting
the green and blue means linearly in the red and green values; grey images have one
channel, so there is nothing to couple, and a colour image here is modelled channel by
channel.

The decoder emits 3M values per channel, in blocks: [M·C logits | M·C means | M·C raw
log-scales], each block component-major ([M, C]), matching gaussian.py's [μ | raw] blocks.
mean: Σ_m π_m·E_m[x], with each E_m exact over the 256 bins (in [0, 1]).
sample: a component m ~ Categorical(π), then a draw of discretized logistic m.
"""

from __future__ import annotations

import functools
from functools import partial

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component
from vae_jax.errors import check_positive_int
from vae_jax.likelihoods import discretized_logistic as dl
from vae_jax.likelihoods.base import Likelihood, sum_event


def _blocks(out: jax.Array, min_log_scale: float):
    """decoder_out [..., 3·M·C] -> logits, μ, log s, each [..., M·C] (component-major)."""
    logits, mu, raw = jnp.split(out, 3, axis=-1)
    return logits, mu, dl.log_scale(raw, min_log_scale)


def _components(values: jax.Array, num_mixtures: int) -> jax.Array:
    """[..., M·C] -> [..., M, C]."""
    return values.reshape(*values.shape[:-1], num_mixtures, -1)


def _log_prob(out, x, *, num_mixtures, min_log_scale):
    logits, mu, log_s = _blocks(out, min_log_scale)
    # The bin masses element-wise on [..., M·C] (x repeated per component), then [..., M, C]
    # for the sum over components: ~25% faster on a CPU than on [..., M, C] throughout.
    xb = jnp.broadcast_to(jnp.tile(x, num_mixtures), mu.shape)
    log_mass = _components(dl.log_mass(xb, mu, log_s), num_mixtures)
    log_pi = jax.nn.log_softmax(_components(logits, num_mixtures), axis=-2)
    return sum_event(jax.nn.logsumexp(log_pi + log_mass, axis=-2), x)  # [..., C] -> [..., B]


def _mean(out, *, num_mixtures, min_log_scale):
    logits, mu, log_s = (_components(v, num_mixtures) for v in _blocks(out, min_log_scale))
    return (jax.nn.softmax(logits, axis=-2) * dl.expected_value(mu, log_s)).sum(axis=-2)


def _sample(key, out, *, num_mixtures, min_log_scale):
    logits, mu, log_s = (_components(v, num_mixtures) for v in _blocks(out, min_log_scale))
    k_component, k_draw = jax.random.split(key)
    m = jax.random.categorical(k_component, logits, axis=-2)[..., None, :]  # [..., 1, C]
    pick = partial(jnp.take_along_axis, indices=m, axis=-2)
    return dl.draw(k_draw, pick(mu)[..., 0, :], pick(log_s)[..., 0, :])


def make(section=None, spec=None) -> Likelihood:
    del spec
    section = defaults() if section is None else section
    return _build(int(section.num_mixtures), float(section.min_log_scale))


@functools.cache  # one object per setting: models built twice have equal graphdefs (one jit)
def _build(num_mixtures: int, min_log_scale: float) -> Likelihood:
    kw = dict(num_mixtures=num_mixtures, min_log_scale=min_log_scale)
    return Likelihood(
        "discretized_logistic_mixture",
        3 * num_mixtures,
        partial(_log_prob, **kw),
        partial(_mean, **kw),
        partial(_sample, **kw),
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_mixtures = 5  # M components per pixel and channel (PixelCNN++ uses 10 for RGB)
    c.min_log_scale = -8.0  # smooth floor of each log s (see discretized_logistic.py)
    return c


def validate(section, spec=None) -> None:
    del spec
    prefix = "model.discretized_logistic_mixture"
    check_positive_int(section, "num_mixtures", prefix)
    dl.check_min_log_scale(section, prefix)


def describe(section, name: str) -> str:
    return f"{name} (M = {section.num_mixtures})"


COMPONENT = Component(
    make, defaults, validate, traits=frozenset({"discrete_8bit"}), describe=describe
)
