"""Gaussian likelihood N(x; μ(z), σ²) for continuous data (Kingma & Welling 2013, App. C.2).

Two variants, chosen by `model.gaussian.learn_scale`:
- fixed σ = `model.gaussian.scale` (σ = 1 is the MSE loss up to a constant:
  ½‖x − μ‖² + D/2·log 2π);
- learned per-pixel σ: the decoder emits [μ, raw] per channel and
  log σ = m + softplus(raw − m) with m = log(`model.gaussian.min_scale`), a smooth floor
  that stops σ → 0 from sending the likelihood to +∞ on pixels that are constant in the data.
"""

from __future__ import annotations

import functools
import math
from functools import partial

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component
from vae_jax.errors import fail
from vae_jax.likelihoods.base import Likelihood, sum_event

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _split(out: jax.Array, learned: bool, log_scale_fixed: float, log_min: float):
    if not learned:
        return out, jnp.full_like(out, log_scale_fixed)
    mu, raw = jnp.split(out, 2, axis=-1)
    return mu, log_min + jax.nn.softplus(raw - log_min)


def _log_prob(out, x, *, learned, log_scale_fixed, log_min):
    mu, log_scale = _split(out, learned, log_scale_fixed, log_min)
    z = (jnp.broadcast_to(x, mu.shape) - mu) * jnp.exp(-log_scale)
    return sum_event(-0.5 * jnp.square(z) - log_scale - _HALF_LOG_2PI, x)


def _mean(out, *, learned, log_scale_fixed, log_min):
    return _split(out, learned, log_scale_fixed, log_min)[0]


def _sample(key, out, *, learned, log_scale_fixed, log_min):
    mu, log_scale = _split(out, learned, log_scale_fixed, log_min)
    return mu + jnp.exp(log_scale) * jax.random.normal(key, mu.shape, mu.dtype)


def make(section=None, spec=None) -> Likelihood:
    del spec
    section = defaults() if section is None else section
    return _build(bool(section.learn_scale), float(section.scale), float(section.min_scale))


@functools.cache  # one object per setting: models built twice have equal graphdefs (one jit)
def _build(learned: bool, scale: float, min_scale: float) -> Likelihood:
    kw = dict(learned=learned, log_scale_fixed=math.log(scale), log_min=math.log(min_scale))
    return Likelihood(
        "gaussian",
        2 if learned else 1,
        partial(_log_prob, **kw),
        partial(_mean, **kw),
        partial(_sample, **kw),
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.scale = 1.0  # fixed σ (1.0 = the MSE loss up to a constant)
    c.learn_scale = False  # the decoder also outputs a per-pixel σ
    c.min_scale = 1e-3  # floor of a learned σ
    return c


def validate(section, spec=None) -> None:
    del spec
    for name in ("scale", "min_scale"):
        if not section[name] > 0:
            fail(f"model.gaussian.{name}", section[name], "must be > 0")


COMPONENT = Component(make, defaults, validate, traits=frozenset({"density", "real"}))  # on R^D
