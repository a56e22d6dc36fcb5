"""Prior registry: name -> class(latent_dim, *, rngs).

A prior is an nnx.Module with `log_prob(z, *, encoder)`, `sample(key, n, *, encoder)` and
`analytic_kl(q)` (None when only the Monte Carlo KL is available). It may own parameters.
"""

from vae_jax.priors.standard_normal import StandardNormal

PRIORS = {
    "standard_normal": StandardNormal,
}

__all__ = ["PRIORS"]
