"""Discretized logistic and its mixture (Salimans et al. 2017) for 8-bit pixels: the 256 bin
masses sum to 1, equal a direct float64 computation, stay finite (with finite gradients) at
extreme parameters; the mean is E[x|z] over the bins; draws lie on the pipeline's k/255 grid
and follow the pmf; binary inputs are refused; two short CLI runs learn and are labelled as
discrete 8-bit models. The implementation is in vae_jax/likelihoods/discretized_logistic*.py."""

import json
import os
import pathlib
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import main_command, read_metrics, tiny_config
from vae_jax.data import load_dataset
from vae_jax.data.transforms import to_unit_interval
from vae_jax.errors import ConfigError
from vae_jax.evaluate.suite import likelihood_kind
from vae_jax.experiment import run
from vae_jax.likelihoods import LIKELIHOODS, discretized_logistic_mixture

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMES = ("discretized_logistic", "discretized_logistic_mixture")
M = 3  # mixture components in these tests
MIN_LOG_SCALE = -8.0
LEVELS = np.arange(256)
GRID = np.asarray(to_unit_interval(jnp.asarray(LEVELS, jnp.uint8)))  # the pipeline's x = k/255
# (μ, raw log-scale) per pixel: centre, edges, far outside [0, 1], between two levels; scales
# from the floor (raw −40 → log s ≈ −8) to far wider than [0, 1] (raw 6 → s ≈ 400).
MUS = (0.5, 0.0, 1.0, -0.3, 1.3, -60.0, 60.0, 100.5 / 255, 3.2 / 255)
RAWS = (-40.0, -8.0, -6.0, -3.0, 0.0, 6.0)


def _lik(name):
    if name == "discretized_logistic":
        return LIKELIHOODS[name].make(None, None)
    section = discretized_logistic_mixture.defaults()
    section.num_mixtures = M
    return LIKELIHOODS[name].make(section, None)


def _params(name, seed=0):
    """decoder_out [P, 1, 1, num_params] (one pixel per parameter setting, grey: C = 1), and
    its μ and raw log-scales in float64 ([P], or [P, M] for the mixture)."""
    mu, raw = (a.ravel() for a in np.meshgrid(MUS, RAWS))
    if name == "discretized_logistic":
        out = np.stack([mu, raw], -1)[:, None, None, :].astype(np.float32)
        return out, out[:, 0, 0, 0].astype(np.float64), out[:, 0, 0, 1].astype(np.float64)
    rng = np.random.default_rng(seed)
    n = mu.size
    logits = rng.normal(0.0, 3.0, (n, M))
    logits[::7, 0] = 40.0  # one component takes (almost) all the weight
    mus = np.stack([mu, rng.uniform(-0.2, 1.2, n), rng.permutation(mu)], -1)
    raws = np.stack([raw, rng.uniform(-10.0, 1.0, n), rng.permutation(raw)], -1)
    out = np.concatenate([logits, mus, raws], -1)[:, None, None, :].astype(np.float32)
    params = out[:, 0, 0, :].astype(np.float64)  # the float32 values the model sees
    return out, params[:, M : 2 * M], params[:, 2 * M :]


def _log_pmf(lik, out):
    """log P(k) for k = 0..255 at every pixel of `out` [P, 1, 1, n]: [P, 256] float64."""
    outs = jnp.broadcast_to(jnp.asarray(out), (256, *out.shape))  # [256, P, 1, 1, n]
    x = jnp.asarray(GRID).reshape(256, 1, 1, 1, 1)
    x = jnp.broadcast_to(x, (256, out.shape[0], 1, 1, 1))  # level k for every pixel
    lp = jax.jit(jax.vmap(lik.log_prob))(outs, x)  # [256, P]
    return np.asarray(lp, np.float64).T


def _reference_log_mass(x, mu, raw):
    """float64 log P(k) directly from the logistic CDF at the edges (k ± ½)/255, the tails
    taken by bins 0 and 255. Above the mean both CDFs are near 1, so the difference is
    taken of the upper tails σ(−·) there (no cancellation)."""
    k = np.round(np.asarray(x, np.float64) * 255)
    s = np.exp(MIN_LOG_SCALE + np.logaddexp(0.0, np.float64(raw) - MIN_LOG_SCALE))
    mu = np.float64(mu)
    a = np.where(k == 255, np.inf, ((k + 0.5) / 255 - mu) / s)
    b = np.where(k == 0, -np.inf, ((k - 0.5) / 255 - mu) / s)
    with np.errstate(over="ignore", divide="ignore"):
        sig = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
        mass = np.where(b > 0, sig(-b) - sig(-a), sig(a) - sig(b))
        return np.log(mass)


@pytest.mark.parametrize("name", NAMES)
def test_registry_and_config(name):
    lik = _lik(name)
    assert lik.name == name and lik.num_params == (2 if name == NAMES[0] else 3 * M)
    assert LIKELIHOODS[name].make(None, None).num_params == (2 if name == NAMES[0] else 15)
    assert "discrete_8bit" in LIKELIHOODS[name].traits
    section = LIKELIHOODS[name].defaults()
    section.min_log_scale = -200.0  # exp(200) overflows float32
    with pytest.raises(ConfigError, match="min_log_scale"):
        LIKELIHOODS[name].validate(section, None)


@pytest.mark.parametrize("name", NAMES)
def test_masses_sum_to_one_over_256_bins(name):
    out, *_ = _params(name)
    log_p = _log_pmf(_lik(name), out)
    assert np.isfinite(log_p).all() and (log_p <= 0).all()
    # Measured ≤ 4e-7 (float32 round-off of each bin's terms, not cancelling across bins);
    # edge bins without their tails, or a bin width 1% off, miss by far more.
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=0, atol=1e-5)


def test_log_prob_matches_float64_reference():
    out, mu, raw = _params("discretized_logistic")
    got = _log_pmf(_lik("discretized_logistic"), out)  # [P, 256]
    ref = _reference_log_mass(GRID[None, :], mu[:, None], raw[:, None])
    keep = ref > -600  # the float64 reference underflows below e^−745
    assert keep.mean() > 0.5
    # float32 rounds the bin edges (k ± ½)/255 by ≤ 6e-8, i.e. shifts a, b by up to 6e-8/s =
    # 2e-4 at the scale floor s ≈ e⁻⁸, and log P by as much (|∂ log P/∂a| ≤ 1). Measured:
    # 4.4e-5 where |log P| < 1, 4e-7 relative in the tails (2.2e-4 at log P ≈ −596). Bins
    # 1/256 wide, a bin width off by 1%, or edge bins without their tails all fail this.
    np.testing.assert_allclose(got[keep], ref[keep], rtol=2e-6, atol=2e-4)
    # Where the float64 reference underflows, the float32 value is still finite.
    assert np.isfinite(got).all() and (got[~keep] < -500).all()


def test_mixture_log_prob_is_the_weighted_sum_of_components():
    out, mus, raws = _params("discretized_logistic_mixture")
    got = _log_pmf(_lik("discretized_logistic_mixture"), out)
    logits = out[:, 0, 0, :M].astype(np.float64)
    log_pi = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    comp = np.stack(
        [_reference_log_mass(GRID[None, :], mus[:, m, None], raws[:, m, None]) for m in range(M)]
    )  # [M, P, 256]
    ref = np.logaddexp.reduce(log_pi.T[:, :, None] + comp, axis=0)
    keep = ref > -600
    np.testing.assert_allclose(got[keep], ref[keep], rtol=2e-6, atol=2e-4)


@pytest.mark.parametrize("name", NAMES)
def test_stable_at_extremes_with_finite_gradients(name):
    lik = _lik(name)
    n = lik.num_params
    extremes = np.array([-1e6, -1e3, -60.0, 0.0, 60.0, 1e3, 1e6], np.float32)
    out = jnp.asarray(np.stack(np.meshgrid(*[extremes] * 2), -1).reshape(-1, 2))
    out = jnp.tile(out, (1, n // 2 + 1))[:, :n].reshape(-1, 1, 1, n)  # every pair, all params
    levels = GRID[[0, 1, 128, 254, 255]]  # both edge bins, their neighbours, the middle
    out = jnp.tile(out, (levels.size, 1, 1, 1))
    x = jnp.asarray(np.repeat(levels, out.shape[0] // levels.size)).reshape(-1, 1, 1, 1)
    per_example, vjp = jax.jit(lambda o: jax.vjp(lambda o: lik.log_prob(o, x), o))(out)
    (grad,) = vjp(jnp.ones_like(per_example))
    assert np.isfinite(per_example).all() and (per_example <= 0).all()
    assert np.isfinite(np.asarray(grad)).all(), out[~np.isfinite(grad).all((1, 2, 3))]


@pytest.mark.parametrize("name", NAMES)
def test_mean_is_the_expectation_over_the_bins(name):
    out, *_ = _params(name)
    lik = _lik(name)
    p = np.exp(_log_pmf(lik, out))
    mean = np.asarray(jax.jit(lik.mean)(jnp.asarray(out)), np.float64)[:, 0, 0, 0]
    assert ((mean >= 0) & (mean <= 1)).all()
    # float32 sums of 255 terms: measured ≤ 3e-7. clip(μ) instead is off by ≥ 1e-2 here.
    np.testing.assert_allclose(mean, p @ (LEVELS / 255) / p.sum(axis=1), atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_samples_lie_on_the_grid_and_follow_the_pmf(name):
    out, *_ = _params(name)
    lik = _lik(name)
    p = np.exp(_log_pmf(lik, out))  # [P, 256]
    n = 40_000
    draws = jax.jit(lik.sample)(jax.random.key(0), jnp.broadcast_to(out, (n, *out.shape)))
    draws = np.asarray(draws)[..., 0, 0, 0]  # [n, P]
    assert draws.dtype == np.float32 and ((draws >= 0) & (draws <= 1)).all()
    k = np.round(draws * 255).astype(int)
    np.testing.assert_array_equal(draws, GRID[k])  # bit-identical to the pipeline's k/255
    # Pearson χ² per pixel setting, bins with expected count < 20 pooled into one. With a
    # fixed key this is deterministic; under the null χ² ≈ dof ± √(2 dof), so
    # dof + 8√(2 dof) + 10 is a > 5σ margin, while rounding down instead of to the nearest
    # level, or dropping a tail, gives χ² in the thousands for the narrow settings.
    for i in range(p.shape[0]):
        counts = np.bincount(k[:, i], minlength=256)
        expected = n * p[i]
        big = expected >= 20
        obs = np.append(counts[big], counts[~big].sum())
        exp = np.append(expected[big], expected[~big].sum())
        obs, exp = obs[exp > 0], exp[exp > 0]
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        dof = max(len(obs) - 1, 1)
        assert chi2 < dof + 8 * np.sqrt(2 * dof) + 10, (i, chi2, dof)


@pytest.mark.parametrize("name", NAMES)
def test_leading_sample_axis(name):
    lik = _lik(name)
    key_out, key_x = jax.random.split(jax.random.key(1))
    out = jax.random.normal(key_out, (3, 2, 4, 4, lik.num_params))  # [L, B, H, W, C·n]
    x = jnp.asarray(GRID)[jax.random.randint(key_x, (2, 4, 4, 1), 0, 256)]
    log_prob = jax.jit(lik.log_prob)
    got = log_prob(out, x)
    assert got.shape == (3, 2)
    expected = jnp.stack([log_prob(out[i], x) for i in range(3)])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    shapes = jax.eval_shape(lik.mean, out), jax.eval_shape(lik.sample, jax.random.key(2), out)
    assert shapes[0].shape == shapes[1].shape == (3, 2, 4, 4, 1)


@pytest.mark.parametrize("binarize", ["dynamic", "static", "threshold"])
def test_binary_inputs_are_refused_with_the_fix(tmp_path, binarize):
    config = tiny_config(**{"model.likelihood": "discretized_logistic", "data.binarize": binarize})
    with pytest.raises(ConfigError, match="data.binarize=none") as err:
        run(config, str(tmp_path))
    assert f"data.binarize='{binarize}'" in str(err.value) and "\n" not in str(err.value)
    assert not tmp_path.exists() or os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
def test_likelihood_kind_on_grey_data_is_discrete(name):
    config = tiny_config(**{"model.likelihood": name, "data.binarize": "none"})
    assert likelihood_kind(config, load_dataset(config.data)) == "discrete"


def _cli(likelihood: str, workdir) -> subprocess.Popen:
    """A short `python -m vae_jax.main` run on the synthetic 8-bit grey blobs."""
    flags = {
        "model.likelihood": likelihood,
        "data.binarize": "none",
        "data.name": "synthetic",  # 8-bit grey: blobs at ~13 and ~242 plus pixel noise
        "data.synthetic_size": 400,
        "data.val_size": 80,
        "model.mlp.hidden_dims": "(32,)",
        "model.latent_dim": 4,
        "train.learning_rate": 3e-3,
        "eval.diagnostics": False,
        "eval.num_figure_examples": 0,
        "eval.autoencoder_steps": 0,
        "eval.max_examples": 64,
    }
    command = main_command(workdir, flags)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_cli_training_lowers_the_loss_and_labels_8bit_bits_per_dim(tmp_path):
    """Both likelihoods through the CLI at once (two processes): 40 steps lower the loss and
    the summary reports bits/dim of a discrete model of 8-bit pixels."""
    procs = {name: _cli(name, tmp_path / name) for name in NAMES}
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        losses = [r["loss"] for r in read_metrics(str(tmp_path / name)) if "loss" in r]
        assert len(losses) >= 2 and losses[-1] < losses[0], (name, losses)
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["likelihood"] == name and summary["likelihood_kind"] == "discrete"
        assert summary["normalized_likelihood"] and summary["test_elbo_nats"] < 0
        assert summary["test_bits_per_dim"] is not None and summary["test_bits_per_dim"] > 0
        assert "bits/dim of a discrete model of 8-bit pixels" in summary["bits_per_dim_note"]
