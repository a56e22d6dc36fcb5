"""Discretized logistic likelihood for 8-bit images (Kingma et al. 2016, "Improved
variational inference with inverse autoregressive flow", its CIFAR-10 decoder; Salimans et
al. 2017, "PixelCNN++", §2.1, with one mixture component).

The pipeline feeds a uint8 pixel k ∈ {0, …, 255} as x = k/255 in float32
(data/transforms.py, to_unit_interval). The decoder emits, per pixel, a mean μ and a raw
log-scale; bin k is [e⁻_k, e⁺_k] with e^±_k = (k ± ½)/255, except that bin 0 reaches down to
−∞ and bin 255 up to +∞:

    P(x = k/255 | μ, s) = σ((e⁺_k − μ)/s) − σ((e⁻_k − μ)/s),   e⁻_0 = −∞, e⁺_255 = +∞,

so the 256 masses telescope to σ(+∞) − σ(−∞) = 1 and log p(x|z) ≤ 0. The bin index is
recovered as k = round(255·x) (float32 k/255 is within 1e-7·k/255 of k/255, far inside
±½/255; an x off the grid falls in the bin that contains it), and both edges are computed
from the integer k as (k ± ½)/255, so neighbouring bins share bit-identical edges.

Stability. With a = (e⁺ − μ)/s, b = (e⁻ − μ)/s and d = a − b = 1/(255 s) > 0,

    σ(a) − σ(b) = σ(a)·σ(−b)·(1 − e^{−d}),
    log P = −softplus(−a) − softplus(b) + log(1 − e^{−d}),

three terms that are finite for every finite μ and s, and as accurate as float32 a and b
allow (a few ulp; a and b carry the edges' rounding, ≤ 6e-8/s). No difference of two
rounded probabilities is taken, so no bin mass in the far tail rounds to 0, and
PixelCNN++'s fallback (the log density at the bin centre plus log Δ when the CDF
difference is below 1e-5) is not needed. d is exp(−log s)/255, never a − b. The edge bins
drop one factor: log σ(a) = −softplus(−a) for k = 0, log σ(−b) = −softplus(b) for k = 255.
log(1 − e^{−d}) = log(−expm1(−d)), or log d − d/2 + d²/24 for d < 1e-3 with log d taken
from log s (finite even where d underflows; the next term, d⁴/2880, is < 1e-15).

The log-scale has a smooth floor, log s = m + softplus(raw − m) (as gaussian.py's learned σ),
m = model.discretized_logistic.min_log_scale, default −8. PixelCNN++ clamps at −7 on data in
[−1, 1], whose bins are twice as wide: −7 − ln 2 ≈ −7.7 here. At s = e⁻⁸ an interior bin
holds at most tanh(d/4) = 99.4% of the mass, so the loss and its gradients stay bounded on
pixels that never vary.

mean: the exact E[x|z] = Σ_k (k/255)·P(k), summed by parts as (1/255)·Σ_{j=1}^{255} P(X ≥ j)
= (1/255)·Σ_j σ((μ − e⁻_j)/s). It lies in [0, 1] by construction (figures need that) and,
unlike clip(μ, 0, 1), counts the tail mass piled on 0 and 1.
sample: μ + s·Logistic(0, 1) rounded to the nearest level and clipped to {0, …, 255} has
exactly the distribution P; it is returned as k/255, the pipeline's values.
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

LEVELS = 256  # uint8 pixels
_MAX_K = LEVELS - 1  # x = k / 255
_LOG_MAX_K = math.log(_MAX_K)
_LOG1MEXP_SERIES_BELOW = 1e-3  # d below which log(1 − e^{−d}) uses its series


def bin_index(x: jax.Array) -> jax.Array:
    """k = round(255·x), clipped to {0, …, 255}, as float (x = k/255 in the pipeline)."""
    return jnp.clip(jnp.round(x * _MAX_K), 0.0, _MAX_K)


def log_scale(raw: jax.Array, min_log_scale: float) -> jax.Array:
    """log s = m + softplus(raw − m): above the floor m, smooth, ≈ raw when raw ≫ m."""
    return min_log_scale + jax.nn.softplus(raw - min_log_scale)


def _log1mexp(d: jax.Array, log_d: jax.Array) -> jax.Array:
    """log(1 − e^{−d}) for d > 0; `log_d` = log d, computed by the caller without underflow."""
    small = d < _LOG1MEXP_SERIES_BELOW
    d_big = jnp.where(small, 1.0, d)  # safe input: no log 0 where d underflows
    d_small = jnp.where(small, d, 0.0)
    series = log_d + d_small * (-0.5 + d_small / 24.0)
    return jnp.where(small, series, jnp.log(-jnp.expm1(-d_big)))


def log_mass(x: jax.Array, mu: jax.Array, log_s: jax.Array) -> jax.Array:
    """log P(x | μ, s) per element; x, μ and log s of one shape (x on the k/255 grid)."""
    k = bin_index(x)
    inv_s = jnp.exp(-log_s)
    a = ((k + 0.5) / _MAX_K - mu) * inv_s  # upper edge (+∞ for k = 255)
    b = ((k - 0.5) / _MAX_K - mu) * inv_s  # lower edge (−∞ for k = 0)
    log_upper = -jax.nn.softplus(-a)  # log σ(a)
    log_lower = -jax.nn.softplus(b)  # log(1 − σ(b))
    log_width = _log1mexp(inv_s / _MAX_K, -log_s - _LOG_MAX_K)  # log(1 − e^{−(a − b)})
    interior = log_upper + log_lower + log_width
    return jnp.where(k == 0, log_upper, jnp.where(k == _MAX_K, log_lower, interior))


def expected_value(mu: jax.Array, log_s: jax.Array) -> jax.Array:
    """E[x] = (1/255)·Σ_{j=1}^{255} σ((μ − (j − ½)/255)/s), element-wise."""
    edges = (jnp.arange(1, LEVELS, dtype=mu.dtype) - 0.5) / _MAX_K  # e⁻_j, j = 1..255
    edges = edges.reshape((1,) * mu.ndim + (_MAX_K,))  # explicit ranks (no rank promotion)
    z = (mu[..., None] - edges) * jnp.exp(-log_s)[..., None]
    return jax.nn.sigmoid(z).sum(axis=-1) / _MAX_K


def draw(key: jax.Array, mu: jax.Array, log_s: jax.Array) -> jax.Array:
    """x ~ P(·| μ, s) on the grid: a logistic draw rounded to the nearest level, clipped."""
    y = mu + jnp.exp(log_s) * jax.random.logistic(key, mu.shape, mu.dtype)
    return bin_index(y) / _MAX_K


def _split(out: jax.Array, min_log_scale: float):
    mu, raw = jnp.split(out, 2, axis=-1)  # [μ for every channel, raw log s for every channel]
    return mu, log_scale(raw, min_log_scale)


def _log_prob(out, x, *, min_log_scale):
    mu, log_s = _split(out, min_log_scale)
    return sum_event(log_mass(jnp.broadcast_to(x, mu.shape), mu, log_s), x)


def _mean(out, *, min_log_scale):
    return expected_value(*_split(out, min_log_scale))


def _sample(key, out, *, min_log_scale):
    return draw(key, *_split(out, min_log_scale))


def make(section=None, spec=None) -> Likelihood:
    del spec
    section = defaults() if section is None else section
    return _build(float(section.min_log_scale))


@functools.cache  # one object per setting: models built twice have equal graphdefs (one jit)
def _build(min_log_scale: float) -> Likelihood:
    kw = dict(min_log_scale=min_log_scale)
    return Likelihood(
        "discretized_logistic",
        2,
        partial(_log_prob, **kw),
        partial(_mean, **kw),
        partial(_sample, **kw),
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.min_log_scale = -8.0  # smooth floor of log s (x in [0, 1], bins 1/255 wide)
    return c


def check_min_log_scale(section, prefix: str) -> None:
    value = section.min_log_scale
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not -30.0 <= value <= 0.0:
        fail(f"{prefix}.min_log_scale", value, "must be a number in [−30, 0] (default −8)")


def validate(section, spec=None) -> None:
    del spec
    check_min_log_scale(section, "model.discretized_logistic")


# A probability mass of 8-bit pixels (256 levels k/255).
COMPONENT = Component(make, defaults, validate, traits=frozenset({"discrete_8bit"}))
