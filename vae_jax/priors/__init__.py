"""Prior registry: name -> Component (vae_jax/components.py); `make` returns an nnx.Module.

A prior has `log_prob(z, *, encoder)`, `sample(key, n, *, encoder, temperature)`,
`analytic_kl(q)` (None when only the Monte Carlo KL is available) and `latent_dim`. What a
sampling temperature means is the prior's to define: a prior with the trait
"temperature" defines it (and `describe_temperature(T)`); for any other, config
validation refuses eval.sample_temperature ≠ 1. It may own parameters; the encoder is
passed so that a VampPrior can push pseudo-inputs through it. The trait "analytic_kl"
says that `analytic_kl(q)` gives the closed form for a DiagGaussian posterior; without it
the KL is a Monte Carlo estimate, and the reports say so (evaluate/suite.py kl_estimate).
A prior may also offer `bind(encoder)`: z -> log p(z) with its per-model work done once
(model.log_prior_fn; the VampPrior encodes its pseudo-inputs there).

- standard_normal: N(0, I); closed-form KL; temperature T: N(0, T²I).
- mog: a learned mixture of K diagonal Gaussians.
- vamp: the VampPrior, the encoder's posteriors at K learned pseudo-inputs.
- flow: a RealNVP flow over N(0, I); temperature T: z = f(T·ε), as in Glow.
The last three have no closed-form KL and take a one-layer latent (an int latent_dim) only.
"""

from vae_jax.priors import flow, mog, standard_normal, vamp

PRIORS = {
    "standard_normal": standard_normal.COMPONENT,
    "mog": mog.COMPONENT,
    "vamp": vamp.COMPONENT,
    "flow": flow.COMPONENT,
}

__all__ = ["PRIORS"]
