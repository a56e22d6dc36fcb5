"""vae_jax.cpu_tuning: per-computation XLA options change speed, never results."""

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import cpu_tuning


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
    cpu_tuning.cpu_compiler_options.cache_clear()
    try:
        assert jax.default_backend() == "cpu"
        # this jaxlib accepts the option (if a later one drops it, we fall back to plain jit)
        assert cpu_tuning.cpu_compiler_options() == cpu_tuning.CPU_OPTIONS
        cpu_tuning.cpu_compiler_options.cache_clear()
        monkeypatch.setenv(cpu_tuning.ENV_SWITCH, "0")
        assert cpu_tuning.cpu_compiler_options() is None
    finally:
        cpu_tuning.cpu_compiler_options.cache_clear()
