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

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.apply import Members, apply_batches, batch_fn
from vae_jax.model import merge_model
from vae_jax.priors.standard_normal import StandardNormal


@batch_fn
def _batch_statistics(model, x, key, layer):
    q = model.posterior(x)  # DiagGaussian [B, D], or a pytree of them (several layers)
    z = model.sample_latent(q, key, 1)  # [1, B, D]: used only where the KL has no closed form
    layers = model.latent_layers(q)
    ql = layers[layer] if layer is not None else next(iter(layers.values()))
    return {
        "loc": ql.loc,
        "log_scale": ql.log_scale,
        "kl_per_dim": ql.kl_per_dim_to_standard_normal(),
        "kl": model.kl(q, z)[0],  # [B] the whole model's KL to its prior
    }


def posterior_statistics(
    graphdef,
    state,
    images_u8: np.ndarray,
    key: jax.Array,
    *,
    batch_size: int = 500,
    layer: str | None = None,
    progress: str | None = None,
) -> dict[str, np.ndarray]:
    """q(z|x) over a data set: loc, log_scale and kl_per_dim (to N(0, I)) of the latent
    layer `layer` (model.latent_layers; None: the first, "z" for a one-layer model), each
    [N, D], and kl [N],
    the KL of the whole q(z|x) to the model's prior (closed form where the prior has one,
    else a one-sample estimate with batch i's key fold_in(key, i)).

    The last batch is padded (one compilation) and the padding dropped.
    """
    inner = state.state if isinstance(state, Members) else state
    model = merge_model(graphdef, *(inner if isinstance(inner, tuple) else (inner,)))
    if model.hierarchical and layer not in (None, "z1"):
        raise ValueError(
            f"layer={layer!r} of a two-layer model: q(z2|x) is not Gaussian (z2's Gaussian "
            "depends on the sampled z1), so its statistics and I(x;z) bounds are not defined "
            "here; measure z1, and count z2's active units with active_units_per_layer"
        )
    return apply_batches(
        _batch_statistics,
        graphdef,
        state,
        images_u8,
        batch_size,
        key=key,
        static=(layer,),
        progress=progress,
    )


@batch_fn
def _prior_draws(model, x, key, num_samples):
    del x
    return model.sample_prior_latent(key, num_samples)  # a tree for a hierarchical model


@batch_fn
def _batch_layer_means(model, x, key, num_samples):
    return model.layer_means(model.posterior(x), key, num_samples)


def layer_means(
    graphdef,
    state,
    images_u8: np.ndarray,
    key: jax.Array,
    *,
    batch_size: int = 500,
    num_samples: int = 100,
) -> dict[str, np.ndarray]:
    """E_q[z_l | x] [N, D_l] for every latent layer l, by name (model.layer_means: the
    posterior means, or for the upper layer of a hierarchical model a Monte Carlo mean over
    `num_samples` draws of the layer below; batch i's key is fold_in(key, i))."""
    means = apply_batches(
        _batch_layer_means,
        graphdef,
        state,
        images_u8,
        batch_size,
        key=key,
        static=(num_samples,),
    )
    return means if isinstance(means, dict) else {"z": means}


def active_units_per_layer(
    graphdef,
    state,
    images_u8: np.ndarray,
    key: jax.Array,
    prior_key: jax.Array,
    threshold: float = 0.01,
    batch_size: int = 500,
    exact_means: dict[str, np.ndarray] | None = None,
) -> dict[str, dict]:
    """Burda et al.'s active units of every latent layer (their Table 2 reports them per
    layer for the two-layer models): Cov_x(E_q[z_l,d | x]) against the threshold, in units
    of Var_p(z_l,d), the variance of the layer under the model's prior (from draws with
    `prior_key`: pass the collapse diagnosis's, so that both count the same units).

    Where E_q[z_l | x] is a Monte Carlo mean (the upper layer of a two-layer model), the
    variance over x of a noisy mean would add E_x Var(mean | x), of the order of the
    threshold itself; so the variance is cross-fitted: the covariance over x of two means
    from independent draws (`key` folded with 0 and 1), unbiased for the (1/N) variance of
    E_q[z | x] over these N examples. For an exact mean the two are equal and this is the
    plain variance. `exact_means`: layers whose means are already computed (the collapse
    diagnosis's μ1, so that both count z1's units from the same numbers)."""
    first, second = (
        layer_means(graphdef, state, images_u8, jax.random.fold_in(key, i), batch_size=batch_size)
        for i in (0, 1)
    )
    prior_vars = prior_variances(graphdef, state, prior_key)
    out = {}
    for name, a in first.items():
        a, b = np.asarray(a, np.float64), np.asarray(second[name], np.float64)
        if exact_means is not None and name in exact_means:
            a = b = np.asarray(exact_means[name], np.float64)
        variances = np.mean((a - a.mean(axis=0)) * (b - b.mean(axis=0)), axis=0)  # [D]
        scale = prior_vars.get(name, 1.0)
        out[name] = {
            "active_units": int(np.sum(variances / scale > threshold)),
            "num_dims": int(a.shape[-1]),
        }
    return out


def prior_variance(
    graphdef, state, key: jax.Array, layer: str, num_samples: int = 10_000
) -> np.ndarray | None:
    """Var_p(z_d) [D] of the prior's latent layer `layer` (`prior_variances`)."""
    return prior_variances(graphdef, state, key, num_samples).get(layer)


def prior_variances(
    graphdef, state, key: jax.Array, num_samples: int = 10_000
) -> dict[str, np.ndarray]:
    """Var_p(z_d) [D] of every latent layer, by name, from one set of `num_samples` draws
    (ancestral draws for a hierarchical model, whose lower layer's marginal is learned);
    {} for a standard normal over independent layers, whose variance is exactly 1 (nothing
    is drawn; a missing layer means 1)."""
    model = merge_model(graphdef, state)
    if isinstance(model.prior, StandardNormal) and not model.hierarchical:
        return {}
    draws = _prior_draws(graphdef, state, None, key, num_samples)
    draws = draws if isinstance(draws, dict) else {"z": draws}
    return {name: np.asarray(d, np.float64).var(axis=0) for name, d in draws.items()}


def layer_names(graphdef, state, images_u8: np.ndarray) -> list[str]:
    """The model's latent layers (model.latent_layers order), from shapes alone."""

    def layers():
        model = merge_model(graphdef, state)
        x = jnp.zeros(images_u8.shape[1:], jnp.float32)[None]
        return model.latent_layers(model.posterior(x))

    return list(jax.eval_shape(layers))


def active_units(
    loc: np.ndarray, threshold: float = 0.01, prior_variance: np.ndarray | None = None
) -> tuple[int, np.ndarray, np.ndarray]:
    """Burda et al.'s active units from posterior means loc [N, D] over a data set.

    Returns (count, mask [D] bool, variances [D]) with variances the population variance
    over examples of each posterior mean (computed in float64, two-pass). Burda et al.'s
    threshold is on the scale of their N(0, I) prior; with `prior_variance` (Var_p(z_d),
    [D], for a learned prior that may shrink or stretch the code) a dimension is active
    when variances / prior_variance > threshold.
    """
    loc = np.asarray(loc, np.float64)
    variances = np.mean(np.square(loc - loc.mean(axis=0, keepdims=True)), axis=0)  # [D]
    scale = 1.0 if prior_variance is None else np.asarray(prior_variance, np.float64)
    mask = variances / scale > threshold
    return int(mask.sum()), mask, variances


def mean_kl_per_dim(kl_per_dim: np.ndarray) -> np.ndarray:
    """KL_d averaged over examples: [N, D] -> [D] (nats)."""
    return np.asarray(kl_per_dim, np.float64).mean(axis=0)


def dims_by_kl(kl_per_dim: np.ndarray) -> np.ndarray:
    """Dimension indices, largest KL first (ties keep index order). [D]"""
    return np.argsort(-np.asarray(kl_per_dim, np.float64), kind="stable")
