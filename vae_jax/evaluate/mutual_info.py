"""Bounds on the mutual information I(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x).

Hoffman & Johnson 2016 ("ELBO surgery") split the average KL to the prior p(z) as

    E_x KL(q(z|x) || p(z)) = I(x; z) + KL(q(z) || p(z)),     q(z) = E_x q(z|x),

so the mean KL, which the caller already has, is an upper bound on I(x; z). The aggregate
posterior q(z) is a mixture over the whole data distribution and has no closed form; with
N i.i.d. data points and their Gaussian posteriors q(z|x_n) = N(μ_n, diag σ_n²), draw one
z_m ~ q(z|x_m) per example and write ℓ_mn = log q(z_m|x_n) (an N × N matrix).

Lower bound (InfoNCE). Plugging the empirical mixture q̂(z) = (1/N) Σ_n q(z|x_n) in for q(z)
is He et al. 2019 ("Lagging inference networks", `calc_mi` in their code). With the sampled
ℓ_mm in the numerator it is exactly InfoNCE (Oord et al. 2018) with the known critic
log q(z|x) (Poole et al. 2019, "On Variational Bounds of Mutual Information"):

    I_lower = (1/N) Σ_m [ ℓ_mm − log (1/N) Σ_n exp ℓ_mn ]
            = log N − (1/N) Σ_m log (1 + Σ_{n≠m} exp(ℓ_mn − ℓ_mm)),

so E[I_lower] ≤ I(x; z) and, term by term, I_lower ≤ log N. The ceiling is not a defect of
this estimator alone: McAllester & Stratos 2020 ("Formal limitations on the measurement of
mutual information") show that no distribution-free high-confidence lower bound from N
samples can exceed O(log N). Once I(x; z) ≳ log N the estimate reads ≈ log N whatever the
truth is (a trained VAE with mean KL 14 nats reads ≈ 9.2 at N = 10⁴); it is then only a
lower bound, flagged `saturated`. He et al. replace ℓ_mm by its expectation −H[q(z|x_m)];
that changes nothing in expectation but lets the estimate exceed log N by Monte Carlo
noise, so the sampled ℓ_mm is kept here.

Upper bound (leave one out). Dropping the diagonal from the mixture gives the "L1Out" bound
of Poole et al. 2019:

    I_upper_loo = (1/N) Σ_m [ ℓ_mm − log (1/(N−1)) Σ_{n≠m} exp ℓ_mn ].

Given (x_m, z_m), the other x_n are independent draws, so E[(1/(N−1)) Σ_{n≠m} q(z_m|x_n)] =
q(z_m) and, by Jensen, E[log of it] ≤ log q(z_m); hence E[I_upper_loo] ≥ E[ℓ_mm − log q(z_m)]
= I(x; z). It can be very loose when the posteriors are narrow next to the spread of the μ_n:
the sum over n ≠ m is then carried by the nearest other posterior, whose density at z_m is
tiny, and the bound grows like the squared distance in units of σ (hundreds or thousands of
nats for well-separated posteriors). The mean KL is then the useful upper bound;
`upper_nats` is the smaller of the two.

Standard errors are those of the mean over the N per-example terms (ddof = 1). They ignore
the dependence between terms through the shared aggregate (every term uses all N
posteriors) and say nothing about the bias of either bound, so read them as a scale for the
Monte Carlo noise only.

The N × N matrix ℓ is built `chunk_size` rows at a time in a jitted `lax.map` (memory
O(chunk · N · D): 128 · 10⁴ · 64 float32 is 330 MB at most, and XLA fuses the reduction
over D); the diagonal is masked with −∞ inside each chunk for the leave-one-out sums, and
the final means and standard errors are taken in float64 on the host.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)


@partial(jax.jit, static_argnames=("chunk_size",))
def _log_ratio_sums(loc, log_scale, key, *, chunk_size):
    """Per example m: log Σ_n exp(ℓ_mn − ℓ_mm) and log Σ_{n≠m} exp(ℓ_mn − ℓ_mm). [N], [N]

    ℓ_mm is read off the same chunk as the sums, so the n = m term is exactly exp(0) = 1 and
    the first sum is ≥ 0 (the InfoNCE term log N − sum is ≤ log N in floating point too).
    """
    n, d = loc.shape
    z = loc + jnp.exp(log_scale) * jax.random.normal(key, (n, d), loc.dtype)  # z_m ~ q(z|x_m)
    inv_scale = jnp.exp(-log_scale)  # [N, D]
    log_norm = -jnp.sum(log_scale, axis=-1) - 0.5 * d * _LOG_2PI  # [N]
    num_chunks = -(-n // chunk_size)
    padded = num_chunks * chunk_size
    z = jnp.pad(z, ((0, padded - n), (0, 0)))  # padded rows are computed and dropped
    rows = jnp.arange(padded).reshape(num_chunks, chunk_size)
    cols = jnp.arange(n)

    def chunk(args):  # z_chunk [C, D], row ids [C]
        z_chunk, row = args
        u = (z_chunk[:, None, :] - loc[None, :, :]) * inv_scale[None, :, :]  # [C, N, D]
        log_q = log_norm[None, :] - 0.5 * jnp.sum(jnp.square(u), axis=-1)  # ℓ [C, N]
        diag = row[:, None] == cols[None, :]  # [C, N]; all False on padded rows
        log_q_self = jnp.sum(jnp.where(diag, log_q, 0.0), axis=1)  # ℓ_mm [C]
        shifted = log_q - log_q_self[:, None]
        log_all = jax.nn.logsumexp(shifted, axis=1)
        log_loo = jax.nn.logsumexp(jnp.where(diag, -jnp.inf, shifted), axis=1)
        return log_all, log_loo

    log_all, log_loo = jax.lax.map(chunk, (z.reshape(num_chunks, chunk_size, d), rows))
    return log_all.reshape(-1)[:n], log_loo.reshape(-1)[:n]


def _mean_and_stderr(terms: np.ndarray) -> tuple[float, float]:
    return float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(terms.size))


def _summary(lower: float, upper: float, log_n: float, saturated: bool) -> str:
    crossed = upper < lower  # both are noisy estimates; the minimum of two is biased low
    lower, upper = (round(v, 2) + 0.0 for v in (lower, upper))  # no "-0.00" from rounding
    if crossed:
        return (
            f"I(x;z) ≈ {lower:.2f} nats (the bounds cross within Monte Carlo noise: "
            f"lower {lower:.2f}, upper {upper:.2f})"
        )
    if saturated:
        return (
            f"I(x;z) ∈ [{lower:.2f}, {upper:.2f}] nats (saturated: I(x;z) ≥ {lower:.2f}; "
            f"the estimate's ceiling is log N = {log_n:.2f})"
        )
    # "≈" only when the bounds pin it down (to 0.1 nats or 5 %); otherwise the interval.
    if upper - lower <= max(0.1, 0.05 * abs(lower)):
        return f"I(x;z) ≈ {0.5 * (lower + upper):.2f} nats (bounds [{lower:.2f}, {upper:.2f}])"
    return f"I(x;z) ∈ [{lower:.2f}, {upper:.2f}] nats"


def mutual_information_bounds(
    loc: np.ndarray,
    log_scale: np.ndarray,
    key: jax.Array,
    *,
    mean_kl: float | None = None,
    chunk_size: int = 128,
    saturation_margin: float = 0.5,
) -> dict:
    """Lower and upper bounds on I(x; z) in nats from posteriors loc, log_scale [N, D].

    loc, log_scale: q(z|x_n) = N(loc_n, diag exp(log_scale_n)²) for N ≥ 2 i.i.d. data points.
    key: one draw z_m ~ q(z|x_m) per example. mean_kl: E_x KL(q(z|x) || p(z)) to the model's
    prior, a further upper bound (Hoffman & Johnson 2016), or None.

    Returns plain Python values:
      lower_nats, lower_stderr_nats: InfoNCE bound, E ≤ I(x; z), always ≤ log N.
      upper_loo_nats, upper_loo_stderr_nats: leave-one-out bound, E ≥ I(x; z); can be very
        loose for narrow posteriors.
      mean_kl_nats: mean_kl as given (None if not given).
      upper_nats: min(upper_loo_nats, mean_kl_nats). Both are estimates, so the minimum is
        biased low and can fall below lower_nats when I(x; z) is pinned down; then
        bounds_crossed is True and the summary says so.
      log_n, num_examples: log N and N.
      saturated: lower_nats ≥ log N − saturation_margin; I(x; z) is then only known to be
        ≥ lower_nats.
      summary: a one-line reading for logs and reports.
    Standard errors are over the N per-example terms (ddof = 1) and ignore the dependence
    between terms through the shared aggregate; see the module docstring.
    """
    loc = jnp.asarray(loc, jnp.float32)
    log_scale = jnp.asarray(log_scale, jnp.float32)
    if loc.ndim != 2 or log_scale.shape != loc.shape:
        raise ValueError(f"loc, log_scale must both be [N, D]; got {loc.shape}, {log_scale.shape}")
    n = loc.shape[0]
    if n < 2:
        raise ValueError(f"need N ≥ 2 posteriors for the bounds, got {n}")
    chunk_size = max(1, min(int(chunk_size), n))
    log_all, log_loo = _log_ratio_sums(loc, log_scale, key, chunk_size=chunk_size)
    log_all = np.asarray(log_all, np.float64)
    log_loo = np.asarray(log_loo, np.float64)
    if not (np.all(np.isfinite(log_all)) and np.all(np.isfinite(log_loo))):
        raise FloatingPointError("non-finite log q(z_m|x_n); check loc and log_scale")
    log_n = math.log(n)
    lower, lower_se = _mean_and_stderr(log_n - log_all)
    upper_loo, upper_loo_se = _mean_and_stderr(math.log(n - 1) - log_loo)
    mean_kl = None if mean_kl is None else float(mean_kl)
    upper = upper_loo if mean_kl is None else min(upper_loo, mean_kl)
    saturated = bool(lower >= log_n - saturation_margin)
    return {
        "lower_nats": lower,
        "lower_stderr_nats": lower_se,
        "upper_loo_nats": upper_loo,
        "upper_loo_stderr_nats": upper_loo_se,
        "mean_kl_nats": mean_kl,
        "upper_nats": upper,
        "log_n": log_n,
        "num_examples": int(n),
        "saturated": saturated,
        "bounds_crossed": bool(upper < lower),
        "summary": _summary(lower, upper, log_n, saturated),
    }


def mutual_information(
    loc: np.ndarray, log_scale: np.ndarray, key: jax.Array, *, chunk_size: int = 128
) -> float:
    """The InfoNCE lower bound on I(x; z) in nats (≤ log N); see `mutual_information_bounds`,
    which also gives an upper bound and says when this value sits at its log N ceiling."""
    return mutual_information_bounds(loc, log_scale, key, chunk_size=chunk_size)["lower_nats"]
