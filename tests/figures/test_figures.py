"""Latent-space figures: the maths behind each picture and the PNG each one writes.

Small random-init MLP VAEs on synthetic 14×14 images; checks use closed forms (slerp on a
sphere, Φ⁻¹ from scipy, a linear encoder's class means) and the exact grid layout.
"""

import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from flax import nnx
from PIL import Image

from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.data import CLASS_NAMES, load_dataset
from vae_jax.figures import latent, plots
from vae_jax.figures.grid import to_grid
from vae_jax.model import build_model

SCALE = 3  # save_grid's default upscaling


@pytest.fixture(scope="module")
def config():
    c = apply_runlocal(base_config())
    c.data.name = "synthetic"
    c.data.image_size = 14
    c.data.synthetic_size = 300
    c.data.val_size = 20
    c.data.binarize = "none"
    c.model.mlp.hidden_dims = (16,)
    c.model.latent_dim = 3
    return c


@pytest.fixture(scope="module")
def data(config):
    ds = load_dataset(config.data)
    return ds.test_x, ds.test_y  # [60, 14, 14, 1] uint8, [60] int32


def _split(config, latent_dim=None, hidden_dims=None, seed=0):
    mc = config.model.copy_and_resolve_references()
    mc.latent_dim = latent_dim or mc.latent_dim
    mc.mlp.hidden_dims = mc.mlp.hidden_dims if hidden_dims is None else hidden_dims
    return nnx.split(build_model(mc, (14, 14, 1), jax.random.key(seed)))


@pytest.fixture(scope="module")
def model(config):
    return _split(config)


# Oracles straight from the model's methods, independent of the figure code.
@partial(jax.jit, static_argnums=0)
def _decode_jit(graphdef, params, z):
    m = nnx.merge(graphdef, params)
    return m.likelihood.mean(m.decode(z))


def _decode(graphdef, params, z):
    return np.asarray(_decode_jit(graphdef, params, jnp.asarray(z, jnp.float32)))


@partial(jax.jit, static_argnums=0)
def _encode_jit(graphdef, params, x):
    q = nnx.merge(graphdef, params).posterior(x)
    return q.loc, q.kl_per_dim_to_standard_normal(), nnx.merge(graphdef, params).reconstruct(x)


def _encode(graphdef, params, images_u8):
    """(μ(x) [N, D], KL per dim [N, D], reconstruction E[x|μ(x)] [N, H, W, C])."""
    x = jnp.asarray(images_u8, jnp.float32) / 255.0
    return tuple(np.asarray(a) for a in _encode_jit(graphdef, params, x))


def _read_png(path):
    img = Image.open(path)
    img.load()
    return img


def _assert_grid_png(path, images, ncols):
    """The PNG is exactly save_grid's layout of images [N, H, W, 1], pixel for pixel."""
    img = _read_png(path)
    n, h, w, _ = images.shape
    nrows = -(-n // ncols)
    assert img.mode == "L"
    assert img.size == ((ncols * (w + 2) + 2) * SCALE, (nrows * (h + 2) + 2) * SCALE)
    expected = (to_grid(images, ncols)[..., 0] * 255).round().astype(np.uint8)
    expected = np.repeat(np.repeat(expected, SCALE, axis=0), SCALE, axis=1)
    np.testing.assert_array_equal(np.asarray(img), expected)


def _assert_labelled_grid_png(path, rows):
    """The PNG is save_labelled_grid's layout of rows [R, K, H, W, 1]: the image grid, pixel
    for pixel, right of a white margin that holds dark label text beside every row."""
    img = np.asarray(_read_png(path).convert("RGB"))  # [h, w, 3]
    r, k, h, w, _ = rows.shape
    expected = (to_grid(rows.reshape(r * k, h, w, 1), k)[..., 0] * 255).round().astype(np.uint8)
    expected = np.repeat(np.repeat(expected, SCALE, axis=0), SCALE, axis=1)
    margin = img.shape[1] - expected.shape[1]
    assert margin > 20 and img.shape[0] == expected.shape[0]
    for c in range(3):
        np.testing.assert_array_equal(img[:, margin:, c], expected)
    label_area = img[:, :margin].min(axis=-1)  # [h, margin]
    for i in range(r):
        band = label_area[(2 + i * (h + 2)) * SCALE : (2 + i * (h + 2) + h) * SCALE]
        assert (band < 128).sum() > 20, f"row {i} has no label"


# ----------------------------------------------------------------------------- encode


def test_encode_means_and_kl_match_the_posterior_across_padded_batches(model, data):
    graphdef, params = model
    x = data[0][:7]
    loc, kl, _ = _encode(graphdef, params, x)
    # batch_size 3 -> batches of 3, 3, 1 (+2 padding): padding must not leak into the result.
    np.testing.assert_allclose(latent.encode_means(graphdef, params, x, 3), loc, atol=1e-6)
    np.testing.assert_allclose(
        latent.average_kl_per_dim(graphdef, params, x, 3), kl.mean(0), rtol=1e-5
    )
    assert plots.encode_means is latent.encode_means


# ----------------------------------------------------------------------------- interpolation


def test_slerp_hits_the_endpoints_and_stays_on_the_sphere():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=(2, 5, 8)).astype(np.float32)
    z0 = 3.0 * z0 / np.linalg.norm(z0, axis=-1, keepdims=True)
    z1 = 3.0 * z1 / np.linalg.norm(z1, axis=-1, keepdims=True)
    t = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    path = np.asarray(latent.slerp(z0, z1, t))  # [5, 11, 8]
    np.testing.assert_allclose(path[:, 0], z0, atol=1e-5)
    np.testing.assert_allclose(path[:, -1], z1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 3.0, rtol=1e-5)
    # The straight line cuts inside the sphere: its midpoint norm is 3·cos(ω/2) < 3.
    cos = np.sum(z0 * z1, -1) / 9.0
    mid = np.linalg.norm(np.asarray(latent.lerp(z0, z1, t))[:, 5], axis=-1)
    np.testing.assert_allclose(mid, 3.0 * np.sqrt((1 + cos) / 2), rtol=1e-5)
    # Orthonormal endpoints: the midpoint is (e0 + e1)/√2.
    e = np.eye(2, dtype=np.float32)
    half = latent.slerp(e[:1], e[1:], np.array([0.5], np.float32))
    np.testing.assert_allclose(half[0, 0], np.full(2, np.sqrt(0.5)), atol=1e-6)


def test_slerp_falls_back_to_lerp_for_parallel_antiparallel_and_zero_codes():
    z0 = np.array([[1, 2, -1], [1, 2, -1], [0.5, 0, 1], [0, 0, 0]], np.float32)
    z1 = np.stack([2 * z0[0], -z0[1], z0[2] + 1e-7, np.ones(3)]).astype(np.float32)
    t = np.linspace(0.0, 1.0, 5, dtype=np.float32)
    out = np.asarray(latent.slerp(z0, z1, t))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, latent.lerp(z0, z1, t), atol=1e-6)


@pytest.mark.parametrize("method", latent.INTERPOLATION_METHODS)
def test_interpolations_rows_are_framed_by_inputs_and_end_in_reconstructions(
    model, data, tmp_path, method
):
    graphdef, params = model
    x = data[0]
    pairs = [(0, 1), (2, 3), (4, 0)]
    rows = latent.interpolations(
        str(tmp_path / "i.png"), graphdef, params, x, pairs, steps=5, method=method
    )
    assert rows.shape == (3, 7, 14, 14, 1)
    a, b = np.array(pairs).T
    np.testing.assert_allclose(rows[:, 0], x[a] / 255.0, atol=1e-6)
    np.testing.assert_allclose(rows[:, -1], x[b] / 255.0, atol=1e-6)
    recon = _encode(graphdef, params, x)[2]
    np.testing.assert_allclose(rows[:, 1], recon[a], atol=1e-5)
    np.testing.assert_allclose(rows[:, -2], recon[b], atol=1e-5)
    _assert_grid_png(tmp_path / "i.png", rows.reshape(-1, 14, 14, 1), ncols=7)


def test_interpolation_figures_write_one_png_per_method(model, data, tmp_path):
    graphdef, params = model
    paths = latent.interpolation_figures(str(tmp_path), graphdef, params, data[0], [(0, 1)], 4)
    assert sorted(paths) == ["linear", "slerp"]
    for method, path in paths.items():
        assert path.endswith(f"interpolation_{method}.png")
        assert _read_png(path).size == ((6 * 16 + 2) * SCALE, (16 + 2) * SCALE)


# ----------------------------------------------------------------------------- traversals


def test_traversal_codes_sort_by_decreasing_kl_and_move_one_coordinate():
    mu = np.array([0.3, -1.0, 2.0, 0.0], np.float32)
    kl = np.array([0.1, 2.0, 0.5, 1.0])
    z, dims = latent.traversal_codes(mu, kl, span=2.0, steps=5)
    np.testing.assert_array_equal(dims, [1, 3, 2, 0])
    for k, d in enumerate(dims):
        np.testing.assert_allclose(z[k, :, d], mu[d] + np.linspace(-2, 2, 5), atol=1e-6)
        others = np.delete(z[k], d, axis=1)
        np.testing.assert_array_equal(others, np.broadcast_to(np.delete(mu, d), others.shape))
    z2, dims2 = latent.traversal_codes(mu, kl, num_dims=2)
    assert z2.shape == (2, 9, 4)
    np.testing.assert_array_equal(dims2, [1, 3])


def test_traversal_rows_follow_decreasing_kl(model, data, tmp_path):
    graphdef, params = model
    image = data[0][5]
    kl = np.array([0.2, 3.0, 1.0])  # rows must be dims 1, 2, 0
    images, dims = latent.traversals(str(tmp_path / "t.png"), graphdef, params, image, kl, steps=4)
    assert images.shape == (3, 4, 14, 14, 1) and dims.tolist() == [1, 2, 0]
    mu = _encode(graphdef, params, image[None])[0][0]
    offsets = np.linspace(-3.0, 3.0, 4)
    for row, d in enumerate([1, 2, 0]):
        z = np.tile(mu, (4, 1))
        z[:, d] += offsets
        np.testing.assert_allclose(images[row], _decode(graphdef, params, z), atol=1e-5)
    _assert_labelled_grid_png(tmp_path / "t.png", images)


def test_traversals_show_only_the_active_dimensions_by_kl(model, data, tmp_path):
    graphdef, params = model
    kl = np.array([0.2, 3.0, 1.0])
    active = np.array([True, False, True])  # dim 1 has the most KL but is inactive
    images, dims = latent.traversals(
        str(tmp_path / "t.png"), graphdef, params, data[0][5], kl, active, steps=4
    )
    assert dims.tolist() == [2, 0] and images.shape == (2, 4, 14, 14, 1)
    _assert_labelled_grid_png(tmp_path / "t.png", images)
    # With no active dimension, the three largest-KL ones are drawn (labelled inactive).
    _, dims = latent.traversals(
        str(tmp_path / "t0.png"), graphdef, params, data[0][5], kl, np.zeros(3, bool), steps=4
    )
    assert dims.tolist() == [1, 2, 0]


# ----------------------------------------------------------------------------- manifold


def test_manifold_codes_are_normal_quantiles_of_a_uniform_grid():
    n = 7
    u = (np.arange(n) + 0.5) / n
    np.testing.assert_allclose(latent.unit_grid(n), u)
    z = latent.manifold_codes(n, latent_dim=4, dims=(2, 0))
    q = scipy.special.ndtri(u)
    np.testing.assert_allclose(z[:, :, 2], np.broadcast_to(q[None, :], (n, n)), atol=1e-5)
    np.testing.assert_allclose(z[:, :, 0], np.broadcast_to(q[::-1, None], (n, n)), atol=1e-5)
    np.testing.assert_array_equal(z[:, :, [1, 3]], 0.0)
    assert z[n // 2, n // 2, 2] == 0.0  # the centre cell is the prior mode


def test_manifold_2d_decodes_the_grid(config, tmp_path):
    graphdef, params = _split(config, latent_dim=2, seed=1)
    images = latent.manifold_2d(str(tmp_path / "m.png"), graphdef, params, n=5)
    assert images.shape == (5, 5, 14, 14, 1)
    expected = _decode(graphdef, params, latent.manifold_codes(5, 2))
    np.testing.assert_allclose(images, expected, atol=1e-5)
    _assert_grid_png(tmp_path / "m.png", images.reshape(-1, 14, 14, 1), ncols=5)


def test_manifold_2d_slices_the_two_highest_kl_dims_when_d_exceeds_2(model, tmp_path):
    graphdef, params = model
    with pytest.raises(ValueError, match="dims"):
        latent.manifold_2d(str(tmp_path / "m.png"), graphdef, params, n=3)
    kl = np.array([0.5, 0.1, 2.0])
    images = latent.manifold_2d(str(tmp_path / "m.png"), graphdef, params, n=3, kl_per_dim=kl)
    expected = _decode(graphdef, params, latent.manifold_codes(3, 3, dims=(2, 0)))
    np.testing.assert_allclose(images, expected, atol=1e-5)


# ----------------------------------------------------------------------------- arithmetic


def test_attribute_vector_is_the_difference_of_class_means_under_a_linear_encoder(
    config, data, tmp_path
):
    # With no hidden layer, μ(x) = x·W + b, so the difference of class means of μ is the
    # difference of class-mean images pushed through W (the bias cancels).
    graphdef, params = _split(config, hidden_dims=(), seed=2)
    x, y = data
    source, target = (int(c) for c in np.unique(y)[:2])
    kernel = np.asarray(nnx.merge(graphdef, params).encoder.out.kernel[...])  # [196, 2D]
    flat = x.reshape(len(x), -1).astype(np.float64) / 255.0
    diff = flat[y == target].mean(0) - flat[y == source].mean(0)
    expected = diff @ kernel[:, :3]
    codes = latent.encode_means(graphdef, params, x)
    v = latent.attribute_vector(codes, y, source, target)
    np.testing.assert_allclose(v, expected, rtol=1e-4, atol=1e-5)

    rows = latent.latent_arithmetic(
        str(tmp_path / "a.png"), graphdef, params, x, y, source, target, num=4, strength=0.5
    )
    chosen = np.flatnonzero(y == source)[:4]
    assert rows.shape == (3, len(chosen), 14, 14, 1)
    np.testing.assert_allclose(rows[0], x[chosen] / 255.0, atol=1e-6)
    np.testing.assert_allclose(rows[1], _decode(graphdef, params, codes[chosen]), atol=1e-5)
    edited = _decode(graphdef, params, codes[chosen] + 0.5 * expected[None, :])
    np.testing.assert_allclose(rows[2], edited, atol=1e-4)
    _assert_labelled_grid_png(tmp_path / "a.png", rows)
    # With the grey originals to show, they come first; the encoded inputs are unchanged.
    grey = 255 - x
    rows4 = latent.latent_arithmetic(
        str(tmp_path / "b.png"), graphdef, params, x, y, source, target, num=4, display_u8=grey
    )
    assert rows4.shape == (4, len(chosen), 14, 14, 1)
    np.testing.assert_allclose(rows4[0], grey[chosen] / 255.0, atol=1e-6)
    np.testing.assert_allclose(rows4[1], rows[0], atol=1e-6)


def test_latent_arithmetic_config_defaults_and_missing_class(model, data, tmp_path):
    """The default edit is Fashion-MNIST's sandal (5) → sneaker (7), set in the config."""
    c = base_config()
    names = CLASS_NAMES["fashion_mnist"]
    assert names[c.eval.arithmetic_source] == "Sandal"
    assert names[c.eval.arithmetic_target] == "Sneaker"
    graphdef, params = model
    x, y = data
    rows = latent.latent_arithmetic(str(tmp_path / "a.png"), graphdef, params, x, y, 5, 7, num=2)
    np.testing.assert_allclose(rows[0], x[np.flatnonzero(y == 5)[:2]] / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="class 11"):
        latent.attribute_vector(np.zeros((3, 2)), np.array([0, 1, 1]), 0, 11)


# ----------------------------------------------------------------------------- plots


def test_pca_2d_recovers_a_planar_cloud_embedded_in_5d():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(500, 2)) * np.array([3.0, 1.0])  # [N, 2], variances 9 : 1
    plane -= plane.mean(0)
    basis = np.linalg.qr(rng.normal(size=(5, 5)))[0][:, :2]  # [5, 2] orthonormal columns
    codes = plane @ basis.T + 4.0  # [N, 5]
    proj, ratio = plots.pca_2d(codes)
    np.testing.assert_allclose(ratio.sum(), 1.0, rtol=1e-9)  # all variance lies in the plane
    cov = np.cov(plane.T)
    top = np.linalg.eigvalsh(cov)[::-1]
    np.testing.assert_allclose(ratio, top / top.sum(), rtol=1e-9)
    # An isometry of the plane: pairwise distances survive the projection.
    np.testing.assert_allclose(
        np.linalg.norm(proj[:50, None] - proj[None, :50], axis=-1),
        np.linalg.norm(plane[:50, None] - plane[None, :50], axis=-1),
        atol=1e-9,
    )


def _assert_matplotlib_png(path, panels):
    img = _read_png(path)
    assert img.mode == "RGBA"
    assert img.size == (
        round(plots.PANEL_SIZE[0] * panels * plots.DPI),
        round(plots.PANEL_SIZE[1] * plots.DPI),
    )
    pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # something was drawn, not a blank canvas


def test_latent_scatter_one_panel_per_model(model, data, tmp_path):
    graphdef, params = model
    x, y = data
    codes = latent.encode_means(graphdef, params, x)  # [N, 3] -> PCA panel
    labels = y.copy()
    labels[:3] = -1  # unlabelled points are drawn grey
    encodings = {"autoencoder": (codes[:, :2], y), "VAE": (codes, labels), "1-D": (codes[:, :1], y)}
    path = plots.latent_scatter(
        str(tmp_path / "s.png"), encodings, class_names=CLASS_NAMES["fashion_mnist"]
    )
    _assert_matplotlib_png(path, panels=3)
    with pytest.raises(ValueError, match="empty"):
        plots.latent_scatter(str(tmp_path / "e.png"), {})


def _write_metrics(path, per_dim: bool):
    with open(path, "w") as f:
        for step in range(10, 110, 10):
            record = {"step": step, "loss": 1.0, "elbo": -90 + step / 10, "log_px": -80.0}
            record["kl"] = 10.0 - step / 10
            if per_dim:
                record["kl_per_dim"] = [record["kl"] / 2, record["kl"] / 2, 0.0]
            f.write(json.dumps(record) + "\n")
        f.write(json.dumps({"step": 100, "test_bits_per_dim": 0.5}) + "\n")  # other keys


@pytest.mark.parametrize("per_dim, panels", [(False, 2), (True, 3)])
def test_training_curves_adds_the_per_dim_panel_only_when_logged(tmp_path, per_dim, panels):
    metrics = tmp_path / "metrics.jsonl"
    _write_metrics(metrics, per_dim)
    path = plots.training_curves(str(tmp_path / "c.png"), str(metrics))
    _assert_matplotlib_png(path, panels)


def test_training_curves_rejects_an_empty_file(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="no metric records"):
        plots.training_curves(str(tmp_path / "c.png"), str(tmp_path / "metrics.jsonl"))
