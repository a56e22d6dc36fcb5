"""Mutual information I(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x).

Hoffman & Johnson 2016 ("ELBO surgery") split the average KL into I(x; z) plus
KL(q(z) || p(z)), with q(z) = E_x q(z|x) the aggregate posterior. The estimator is
He et al. 2019 ("Lagging inference networks", `calc_mi` in their code), over N posteriors
q(z|x_n) = N(μ_n, diag σ_n²) and one draw z_m ~ q(z|x_m) per example:

    I ≈ (1/N) Σ_n E_{q(z|x_n)}[log q(z|x_n)]  −  (1/N) Σ_m log q̂(z_m),
    E_{q(z|x_n)}[log q(z|x_n)] = −H[q(z|x_n)] = −Σ_d (½ log 2πe + log σ_nd)     (exact),
    log q̂(z_m) = logsumexp_n log q(z_m|x_n) − log N                            (sampled).

The aggregate q̂ includes the draw's own posterior (n = m), as in He et al., so I ≤ log N
up to Monte Carlo noise, and I ≈ 0 when every q(z|x_n) is the same distribution. The N × N
matrix of log q(z_m|x_n) is built `chunk_size` rows at a time (memory O(chunk · N · D)),
so N = 10⁴ fits in memory.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.distributions import DiagGaussian


@partial(jax.jit, static_argnames=("chunk_size",))
def _mutual_information(loc, log_scale, key, *, chunk_size):
    n, d = loc.shape
    q = DiagGaussian(loc, log_scale)  # [N, D]
    neg_entropy = -q.entropy().mean()
    z = q.sample(key)  # [N, D], one draw per posterior
    num_chunks = -(-n // chunk_size)
    z = jnp.pad(z, ((0, num_chunks * chunk_size - n), (0, 0)))  # padded rows are dropped

    def log_aggregate(z_chunk):  # [C, D] -> log q̂(z) [C]
        zb = jnp.broadcast_to(z_chunk[:, None, :], (chunk_size, n, d))  # [C, N, D]
        return jax.nn.logsumexp(q.log_prob(zb), axis=1) - math.log(n)

    log_qz = jax.lax.map(log_aggregate, z.reshape(num_chunks, chunk_size, d)).reshape(-1)[:n]
    return neg_entropy - log_qz.mean()


def mutual_information(
    loc: np.ndarray, log_scale: np.ndarray, key: jax.Array, *, chunk_size: int = 128
) -> float:
    """He et al.'s estimate of I(x; z) in nats from posteriors loc, log_scale [N, D]."""
    loc = jnp.asarray(loc, jnp.float32)
    chunk_size = min(chunk_size, loc.shape[0])
    value = _mutual_information(
        loc, jnp.asarray(log_scale, jnp.float32), key, chunk_size=chunk_size
    )
    return float(value)
