"""Strict JAX settings for every test (equinox style): no implicit rank promotion, and two
CPU devices so that sharded code paths run on a CPU-only machine."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_num_cpu_devices", 2)
