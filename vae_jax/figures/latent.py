"""Figures that walk the latent space of a trained VAE; every code is a posterior mean μ(x).

- Interpolation between the codes of two inputs, linear or spherical (slerp: Shoemake 1985,
  "Animating rotation with quaternion curves"; recommended for Gaussian latents by White 2016,
  "Sampling generative networks", §2.1):

      slerp(z₀, z₁; t) = sin((1 − t)ω)/sin ω · z₀ + sin(tω)/sin ω · z₁,
      cos ω = ⟨z₀, z₁⟩ / (‖z₀‖ ‖z₁‖).

  For equal-norm endpoints the path stays on their sphere, where N(0, I) puts its mass,
  while the linear path cuts through the low-density interior.
- Latent traversals (Higgins et al. 2017, "β-VAE", Fig. 1-2): vary one coordinate at a time,
  rows sorted by the dimension's average KL so the most informative dimensions come first.
- The 2-D learned manifold (Kingma & Welling 2013, Fig. 4): decode z = Φ⁻¹(u) for u on a
  regular grid of the unit square, so equal areas of the figure carry equal prior mass.
- Editing by latent arithmetic: add v = mean code of one class − mean code of another
  (the attribute-vector trick of White 2016, §2.3, there with smile vectors).

All figures decode with E[x | z] (`model.likelihood.mean`). Nothing here trains or draws
random numbers, so every figure is a function of (params, data) alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vae_jax.apply import apply_batches, batch_fn
from vae_jax.evaluate.active_units import dims_by_kl
from vae_jax.figures.grid import save_grid, save_labelled_grid

INTERPOLATION_METHODS = ("linear", "slerp")


# ----------------------------------------------------------------------------- encode / decode


@batch_fn
def _encode_batch(model, x, key):
    """x [B, H, W, C] -> (μ(x) [B, D], per-dimension KL to N(0, I) [B, D]) of the first
    latent layer (the only one of the models built here)."""
    del key
    q = next(iter(model.latent_layers(model.posterior(x)).values()))
    return q.loc, q.kl_per_dim_to_standard_normal()


def _encode(graphdef, params, images_u8: np.ndarray, batch_size: int):
    """Batched `_encode_batch` over [N, ...]; the last batch is padded (one compilation)."""
    batch_size = max(1, min(batch_size, len(images_u8)))  # no images: apply_batches raises
    return apply_batches(_encode_batch, graphdef, params, images_u8, batch_size)


def encode_means(graphdef, params, images_u8: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Posterior means μ(x) [N, D] of uint8 images [N, H, W, C]."""
    return _encode(graphdef, params, images_u8, batch_size)[0]


def average_kl_per_dim(
    graphdef, params, images_u8: np.ndarray, batch_size: int = 500
) -> np.ndarray:
    """Average over the images of D_KL(q(z_j|x) || N(0, 1)) per dimension j: [D] nats.

    The closed form assumes a standard normal prior; with another prior it still ranks the
    dimensions by how far the encoder moves them from N(0, 1).
    """
    return _encode(graphdef, params, images_u8, batch_size)[1].mean(axis=0)


@batch_fn
def _decode_mean(model, z, key):
    del key
    return model.likelihood.mean(model.decode(z))


def decode_mean(graphdef, params, z: np.ndarray) -> np.ndarray:
    """E[x | z] for codes z [..., D] -> images [..., H, W, C] in [0, 1] (numpy)."""
    return np.asarray(_decode_mean(graphdef, params, jnp.asarray(z, jnp.float32), None))


def _as_float_images(images_u8: np.ndarray) -> np.ndarray:
    return np.asarray(images_u8, np.float32) / 255.0


# ----------------------------------------------------------------------------- interpolation


@jax.jit
def lerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """(1 − t) z₀ + t z₁. z0, z1 [P, D], t [T] -> [P, T, D]."""
    t = t[None, :, None]  # [1, T, 1]
    return (1.0 - t) * z0[:, None, :] + t * z1[:, None, :]


@partial(jax.jit, static_argnames="eps")
def slerp(z0: jax.Array, z1: jax.Array, t: jax.Array, eps: float = 1e-4) -> jax.Array:
    """Spherical interpolation (Shoemake 1985; White 2016). z0, z1 [P, D], t [T] -> [P, T, D].

    Pairs whose angle ω has sin ω < eps (near-parallel or antiparallel codes, or a zero code)
    fall back to `lerp`, the limit of slerp as ω → 0 (White's reference code does the same).
    """
    n0 = jnp.linalg.norm(z0, axis=-1, keepdims=True)  # [P, 1]
    n1 = jnp.linalg.norm(z1, axis=-1, keepdims=True)  # [P, 1]
    tiny = jnp.finfo(z0.dtype).tiny
    u0, u1 = z0 / jnp.maximum(n0, tiny), z1 / jnp.maximum(n1, tiny)  # [P, D] unit vectors
    # ω = 2·atan2(‖u₀ − u₁‖, ‖u₀ + u₁‖) (Kahan): accurate near 0 and π, where arccos of a
    # float32 cosine is off by ~1e-3, enough to hide a degenerate pair from the sin ω test.
    omega = 2.0 * jnp.arctan2(
        jnp.linalg.norm(u0 - u1, axis=-1), jnp.linalg.norm(u0 + u1, axis=-1)
    )  # [P]
    sin = jnp.sin(omega)  # [P]
    ok = (jnp.abs(sin) >= eps) & (n0[:, 0] * n1[:, 0] > 0)  # [P]
    safe_sin = jnp.where(ok, sin, 1.0)[:, None, None]  # [P, 1, 1]
    tw = t[None, :, None] * omega[:, None, None]  # [P, T, 1]
    w0 = jnp.sin(omega[:, None, None] - tw) / safe_sin  # [P, T, 1]
    w1 = jnp.sin(tw) / safe_sin  # [P, T, 1]
    spherical = w0 * z0[:, None, :] + w1 * z1[:, None, :]  # [P, T, D]
    return jnp.where(ok[:, None, None], spherical, lerp(z0, z1, t))


def interpolation_codes(
    z0: np.ndarray, z1: np.ndarray, steps: int, method: str = "linear"
) -> np.ndarray:
    """`steps` codes from z0 to z1 (both ends included). [P, D], [P, D] -> [P, steps, D]."""
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"unknown interpolation '{method}'; known: {INTERPOLATION_METHODS}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2 to include both ends, got {steps}")
    t = jnp.linspace(0.0, 1.0, steps)
    fn = lerp if method == "linear" else slerp
    return np.asarray(fn(jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32), t))


def interpolations(
    path: str,
    graphdef,
    params,
    images_u8: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    steps: int = 10,
    method: str = "linear",
) -> np.ndarray:
    """Decode paths between the posterior means of pairs of inputs; one row per pair.

    `pairs` index `images_u8` [N, H, W, C]. Row = [input a, E[x|z(t)] for `steps` values of
    t from 0 to 1, input b]: the decoded ends are the reconstructions of a and b, and the real
    inputs frame them. Returns the drawn images [P, steps + 2, H, W, C].
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)  # [P, 2]
    codes = encode_means(graphdef, params, images_u8[pairs.reshape(-1)]).reshape(
        len(pairs), 2, -1
    )  # [P, 2, D]
    z = interpolation_codes(codes[:, 0], codes[:, 1], steps, method)  # [P, steps, D]
    decoded = decode_mean(graphdef, params, z)  # [P, steps, H, W, C]
    inputs = _as_float_images(images_u8[pairs])  # [P, 2, H, W, C]
    rows = np.concatenate([inputs[:, :1], decoded, inputs[:, 1:]], axis=1)
    save_grid(path, rows.reshape(-1, *rows.shape[2:]), ncols=steps + 2)
    return rows


def interpolation_figures(
    directory: str,
    graphdef,
    params,
    images_u8: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    steps: int = 10,
) -> dict[str, str]:
    """Write one PNG per method, `interpolation_linear.png` and `interpolation_slerp.png`,
    with the same pairs in the same rows so the two files compare side by side.
    Returns {method: path}."""
    paths = {}
    for method in INTERPOLATION_METHODS:
        paths[method] = os.path.join(directory, f"interpolation_{method}.png")
        interpolations(paths[method], graphdef, params, images_u8, pairs, steps, method)
    return paths


# ----------------------------------------------------------------------------- traversals


def traversal_codes(
    mu: np.ndarray,
    kl_per_dim: np.ndarray,
    num_dims: int | None = None,
    span: float = 3.0,
    steps: int = 9,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes for a traversal around μ [D]: returns (z [K, steps, D], dims [K]).

    dims are the K = num_dims (default D) dimensions with the largest average KL, in
    decreasing order (ties keep index order); row k sets z[dims[k]] = μ[dims[k]] + v for v
    evenly spaced in [−span, span] and leaves every other coordinate at μ.
    """
    mu = np.asarray(mu, np.float32)
    kl_per_dim = np.asarray(kl_per_dim, np.float64)
    if mu.ndim != 1 or kl_per_dim.shape != mu.shape:
        raise ValueError(f"need μ [D] and kl_per_dim [D], got {mu.shape} and {kl_per_dim.shape}")
    dims = dims_by_kl(kl_per_dim)[: num_dims or len(mu)]  # [K]
    offsets = np.linspace(-span, span, steps, dtype=np.float32)  # [steps]
    z = np.broadcast_to(mu, (len(dims), steps, len(mu))).copy()  # [K, steps, D]
    z[np.arange(len(dims)), :, dims] = mu[dims][:, None] + offsets[None, :]
    return z, dims


def traversals(
    path: str,
    graphdef,
    params,
    image_u8: np.ndarray,
    kl_per_dim: np.ndarray,
    active_mask: np.ndarray | None = None,
    factors: dict[int, dict] | None = None,
    span: float = 3.0,
    steps: int = 9,
) -> tuple[np.ndarray, np.ndarray]:
    """One labelled row per active latent dimension, largest average KL first (e.g. KL from
    `average_kl_per_dim` on the test set): E[x|z] as that coordinate of μ(x) moves over
    μ_j ± span. `image_u8` [H, W, C] is one input as the encoder sees it. `factors`
    (dimension -> {"factor", "normalized_mi"}) adds the factor each row captures.

    Inactive dimensions (`active_mask` False; posterior collapse) give constant rows and are
    left out; with no mask every dimension is drawn, and with no active dimension the three
    largest-KL ones are drawn, labelled inactive. Returns (images [K, steps, H, W, C], dims [K]).
    """
    image_u8 = np.asarray(image_u8)
    kl_per_dim = np.asarray(kl_per_dim, np.float64)
    active = np.ones(len(kl_per_dim), bool) if active_mask is None else np.asarray(active_mask)
    mu = encode_means(graphdef, params, image_u8.reshape(1, *image_u8.shape[-3:]))[0]  # [D]
    z, order = traversal_codes(mu, kl_per_dim, None, span, steps)  # [D, steps, D], by KL
    keep = active[order] if active[order].any() else np.arange(len(order)) < 3
    z, dims = z[keep], order[keep]  # [K, steps, D], [K]
    images = decode_mean(graphdef, params, z)  # [K, steps, H, W, C]
    labels = [f"z{d}  KL {kl_per_dim[d]:.2f}" + ("" if active[d] else " (inactive)") for d in dims]
    if factors is not None:
        labels = [
            f"{label}  {factors[d]['factor']} {factors[d]['normalized_mi']:.2f}"
            for label, d in zip(labels, dims, strict=True)
        ]
    save_labelled_grid(path, images, labels)
    return images, np.asarray(dims)


# ----------------------------------------------------------------------------- 2-D manifold


def unit_grid(n: int) -> np.ndarray:
    """n cell midpoints (i + ½)/n of the unit interval: symmetric about ½, never 0 or 1."""
    return (np.arange(n, dtype=np.float64) + 0.5) / n


def manifold_codes(n: int, latent_dim: int, dims: tuple[int, int] = (0, 1)) -> np.ndarray:
    """z [n, n, D]: z[r, c, dims[0]] = Φ⁻¹(u_c), z[r, c, dims[1]] = Φ⁻¹(u_{n−1−r}), rest 0.

    Columns go right with dims[0] and rows go up with dims[1], as in a scatter plot.
    """
    phi_inv = np.asarray(jax.scipy.special.ndtri(jnp.asarray(unit_grid(n), jnp.float32)))
    z = np.zeros((n, n, latent_dim), np.float32)
    z[:, :, dims[0]] = phi_inv[None, :]
    z[:, :, dims[1]] = phi_inv[::-1, None]
    return z


def manifold_2d(
    path: str,
    graphdef,
    params,
    n: int = 20,
    *,
    dims: tuple[int, int] | None = None,
    kl_per_dim: np.ndarray | None = None,
) -> np.ndarray:
    """The learned manifold (Kingma & Welling 2013, Fig. 4): E[x|z] on the n×n grid
    z = Φ⁻¹(u), u on the cell midpoints of (0, 1)² (`manifold_codes`).

    The inverse CDF maps the grid to the quantiles of a N(0, I) prior, so this reads as the
    manifold only for a standard normal prior. For D = 2 both latents are used. For D > 2 it
    is a 2-D slice: the grid runs over `dims`, or over the two dimensions with the largest
    `kl_per_dim` when dims is None, and every other coordinate stays at the prior mean 0.
    Returns the images [n, n, H, W, C].
    """
    # The first latent layer: the one the decoder reads for a two-layer model.
    latent_dim = next(iter(nnx.merge(graphdef, params).latent_dims.values()))
    if dims is None:
        if latent_dim == 2:
            dims = (0, 1)
        elif kl_per_dim is None:
            raise ValueError(
                f"latent_dim={latent_dim} > 2: pass dims=(i, j) or kl_per_dim to pick the "
                "two dimensions of the slice"
            )
        else:
            dims = tuple(int(d) for d in dims_by_kl(kl_per_dim)[:2])
    if len(set(dims)) != 2 or not all(0 <= d < latent_dim for d in dims):
        raise ValueError(f"dims must be two distinct indices below {latent_dim}, got {dims}")
    images = decode_mean(graphdef, params, manifold_codes(n, latent_dim, dims))
    save_grid(path, images.reshape(-1, *images.shape[2:]), ncols=n)
    return images


# ----------------------------------------------------------------------------- arithmetic


def attribute_vector(
    codes: np.ndarray, labels: np.ndarray, source_class: int, target_class: int
) -> np.ndarray:
    """v = mean of codes [N, D] with label target − mean with label source. [D]"""
    labels = np.asarray(labels)
    means = []
    for c in (target_class, source_class):
        mask = labels == c
        if not mask.any():
            raise ValueError(f"no examples of class {c} among the labels")
        means.append(np.asarray(codes)[mask].mean(axis=0, dtype=np.float64))
    return (means[0] - means[1]).astype(np.float32)


def latent_arithmetic(
    path: str,
    graphdef,
    params,
    images_u8: np.ndarray,
    labels: np.ndarray,
    source_class: int,
    target_class: int,
    num: int = 8,
    strength: float = 1.0,
    display_u8: np.ndarray | None = None,
) -> np.ndarray:
    """Edit inputs of `source_class` towards `target_class` by adding an attribute vector.

    v = `attribute_vector` over the posterior means of all of `images_u8` [N, H, W, C]
    (typically the test set, as the encoder sees it); the first `num` examples of the
    source class are decoded at μ(x) + strength·v (the config's default on Fashion-MNIST
    adds "sneaker minus sandal" to sandals, eval.arithmetic_source/target). Rows: [the
    originals from `display_u8`, if given], encoded inputs, reconstructions E[x|μ(x)],
    edits. Returns the rows [R, num, H, W, C].
    """
    codes = encode_means(graphdef, params, images_u8)  # [N, D]
    v = attribute_vector(codes, labels, source_class, target_class)  # [D]
    chosen = np.flatnonzero(np.asarray(labels) == source_class)[:num]
    z = codes[chosen]  # [num, D]
    decoded = decode_mean(graphdef, params, np.stack([z, z + strength * v[None, :]]))
    rows = [_as_float_images(images_u8[chosen])[None], decoded]
    names = [
        "encoded input",
        "E[x | μ(x)]",
        f"E[x | μ(x) + v], v = {target_class} − {source_class}",
    ]
    if display_u8 is not None:
        rows.insert(0, _as_float_images(display_u8[chosen])[None])
        names.insert(0, "original (grey)")
    rows = np.concatenate(rows)
    save_labelled_grid(path, rows, names)
    return rows
