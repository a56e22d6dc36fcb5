"""Active units and KL per latent dimension (Burda et al. 2015, §5.2).

Burda et al. call latent dimension d active when its posterior mean varies with the data:

    A_d = Cov_x( E_{q(z|x)}[z_d] ) > threshold,   threshold = 10⁻² by default,

a dimension the decoder cannot use, whatever the weights, when A_d ≈ 0. The companion
diagnostic is the KL of each dimension averaged over the data,

    KL_d = E_x[ −½ (1 + log σ_d²(x) − μ_d²(x) − σ_d²(x)) ],

the closed-form per-dimension KL to N(0, I) (Kingma & Welling 2013, App. B). It equals the
model's KL term only for the standard-normal prior; for other priors (MoG, VampPrior, flows)
it is the KL to N(0, I), still a valid measure of how far each q(z_d|x) moves away from a
fixed reference, but its sum is not the ELBO's KL term.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from flax import nnx

from vae_jax.batching import map_padded_batches
from vae_jax.data.transforms import to_unit_interval


@partial(jax.jit, static_argnums=(0,))
def _batch_statistics(graphdef, params, x_u8, key):
    model = nnx.merge(graphdef, params)
    q = model.posterior(to_unit_interval(x_u8))  # DiagGaussian [B, D]
    z = q.sample(key, 1)  # [1, B, D]: used only where the prior has no closed-form KL
    return {
        "loc": q.loc,
        "log_scale": q.log_scale,
        "kl_per_dim": q.kl_per_dim_to_standard_normal(),
        "kl": model.kl(q, z)[0],  # [B] KL to the model's prior
    }


def posterior_statistics(
    graphdef,
    params,
    images_u8: np.ndarray,
    key: jax.Array,
    *,
    batch_size: int = 500,
    progress: str | None = None,
) -> dict[str, np.ndarray]:
    """q(z|x) over a data set: loc, log_scale and kl_per_dim (to N(0, I)), each [N, D], and
    kl [N], the KL of q(z|x) to the model's prior (closed form where the prior has one, else
    a one-sample estimate with batch i's key fold_in(key, i)).

    The last batch is padded (one compilation) and the padding dropped.
    """
    return map_padded_batches(
        lambda i, x: _batch_statistics(graphdef, params, x, jax.random.fold_in(key, i)),
        images_u8,
        batch_size,
        progress=progress,
    )


def active_units(loc: np.ndarray, threshold: float = 0.01) -> tuple[int, np.ndarray, np.ndarray]:
    """Burda et al.'s active units from posterior means loc [N, D] over a data set.

    Returns (count, mask [D] bool, variances [D]) with variances the population variance
    over examples of each posterior mean (computed in float64, two-pass).
    """
    loc = np.asarray(loc, np.float64)
    variances = np.mean(np.square(loc - loc.mean(axis=0, keepdims=True)), axis=0)  # [D]
    mask = variances > threshold
    return int(mask.sum()), mask, variances


def mean_kl_per_dim(kl_per_dim: np.ndarray) -> np.ndarray:
    """KL_d averaged over examples: [N, D] -> [D] (nats)."""
    return np.asarray(kl_per_dim, np.float64).mean(axis=0)
