"""Prior registry: name -> Component (vae_jax/components.py); `make` returns an nnx.Module.

A prior has `log_prob(z, *, encoder)`, `sample(key, n, *, encoder, temperature)`,
`analytic_kl(q)` (None when only the Monte Carlo KL is available) and `latent_dim`. What a
sampling temperature means is the prior's to define: a prior with the trait
"temperature" defines it (and `describe_temperature(T)`); for any other, config
validation refuses eval.sample_temperature ≠ 1. It may own parameters; the encoder is
passed so that a VampPrior can push pseudo-inputs through it. The trait "analytic_kl"
says that `analytic_kl(q)` gives the closed form for a DiagGaussian posterior; without it
the KL is a Monte Carlo estimate, and the reports say so (evaluate/suite.py kl_estimate).
"""

from vae_jax.priors import standard_normal

PRIORS = {
    "standard_normal": standard_normal.COMPONENT,
}

__all__ = ["PRIORS"]
