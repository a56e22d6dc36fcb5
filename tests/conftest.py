"""Strict JAX settings for every test (equinox style): no implicit rank promotion, two CPU
devices so that sharded code paths run on a CPU-only machine, full float32 matmuls (GPUs
use TF32 and TPUs bf16 passes by default; the tests' tolerances assume float32), and
deterministic GPU reductions, set before JAX starts its backend."""

import os

if "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true"
    ).strip()

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_default_matmul_precision", "highest")
