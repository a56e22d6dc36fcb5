"""vae_jax.cpu_tuning: per-computation XLA options change speed, never results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vae_jax import cpu_tuning
from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.evaluate import loglik
from vae_jax.model import build_model


def _log_px(w, z, x):
    logits = jnp.tanh(z @ w[0]) @ w[1]
    return (x * logits - jax.nn.softplus(logits)).sum(-1)


def test_tuned_jit_matches_jax_jit():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w = (jax.random.normal(k1, (8, 64)), jax.random.normal(k2, (64, 32)) * 0.1)
    z = jax.random.normal(k3, (16, 8))
    x = (jnp.arange(16 * 32).reshape(16, 32) % 3 == 0).astype(jnp.float32)
    np.testing.assert_allclose(
        cpu_tuning.tuned_jit(_log_px)(w, z, x), jax.jit(_log_px)(w, z, x), rtol=1e-5, atol=1e-5
    )


def test_options_apply_on_cpu_and_the_switch_turns_them_off(monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("the CPU options apply only on a CPU backend")
    cpu_tuning.cpu_compiler_options.cache_clear()
    try:
        # this jaxlib accepts the option (if a later one drops it, we fall back to plain jit)
        assert cpu_tuning.cpu_compiler_options() == cpu_tuning.CPU_OPTIONS
        cpu_tuning.cpu_compiler_options.cache_clear()
        monkeypatch.setenv(cpu_tuning.ENV_SWITCH, "0")
        assert cpu_tuning.cpu_compiler_options() is None
    finally:
        cpu_tuning.cpu_compiler_options.cache_clear()


def test_the_log_likelihood_estimator_is_compiled_without_ynn_fusions():
    """The options reach XLA for the estimator itself: its compiled program has no YNNPACK
    fusion, while plain jax.jit of the same function, on this jaxlib, does."""
    if jax.default_backend() != "cpu" or cpu_tuning.cpu_compiler_options() is None:
        pytest.skip("the CPU options apply only on a CPU backend whose XLA accepts them")
    c = apply_runlocal(base_config())
    c.model.latent_dim, c.model.mlp.hidden_dims = 4, (32,)
    graphdef, params = nnx.split(build_model(c.model, (8, 8, 1), jax.random.key(0)))
    x = jnp.zeros((16, 8, 8, 1), jnp.uint8)
    args = (graphdef, params, x, jax.random.key(1), 20, 10)
    tuned = loglik._batch_log_likelihood
    assert isinstance(tuned, cpu_tuning.tuned_jit)
    tuned_hlo = tuned.lower(*args).compile().as_text()
    plain = jax.jit(tuned.__wrapped__, static_argnums=(0, 4, 5))
    plain_hlo = plain.lower(*args).compile().as_text()
    assert "__ynn_fusion" in plain_hlo  # the default this option exists to avoid
    assert "__ynn_fusion" not in tuned_hlo
