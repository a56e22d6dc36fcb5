"""Per-computation XLA options for the CPU backend.

XLA:CPU (jaxlib 0.10) hands matmul + elementwise chains to its YNNPACK library as "YNN
fusions". For the decoder-heavy log-likelihood estimator (three matmuls, then the Bernoulli
log-prob and a logsumexp, over K·B rows) those kernels run about 4x slower on our 2-core
x86 machines than XLA's own dot emitter with its elementwise fusions. Measured on the
estimator at K = 2000 per image (seconds, best of 4): all YNN fusions (default) ~8.2, YNN
for individual dots only 2.55, YNN off 2.12. Training steps gain nothing (12.2k, 12.7k and
11.5k examples/s), so only the estimator uses this. The choice is a compile option, so it is
set per jitted function here instead of globally through XLA_FLAGS, and only on CPU.

`tuned_jit(fun, **jit_kwargs)` is `jax.jit` that adds CPU_OPTIONS when the default backend
is the CPU and this jaxlib accepts them (an unknown option or value fails compilation, so
it is probed once on a tiny function). Set VAE_JAX_CPU_TUNING=0 to get plain `jax.jit`;
benchmarks/loglik_bench.py measures both.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}  # an empty list: no YNN fusions
ENV_SWITCH = "VAE_JAX_CPU_TUNING"


@functools.cache
def cpu_compiler_options() -> dict[str, str] | None:
    """CPU_OPTIONS if they apply here (CPU backend, accepted by XLA, not switched off)."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or jax.default_backend() != "cpu":
        return None
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS)(jnp.zeros(())).block_until_ready()
    except Exception:  # an XLA without this option: plain jit is correct, just slower
        return None
    return dict(CPU_OPTIONS)


class tuned_jit:  # lower-case: used like the function jax.jit
    """`jax.jit(fun, **jit_kwargs)` with cpu_compiler_options(), built at the first use (after
    the user has had the chance to pick a platform). Other attributes (`lower`,
    `clear_cache`, ...) are those of the jitted function."""

    def __init__(self, fun, **jit_kwargs):
        functools.update_wrapper(self, fun)
        self._fun, self._jit_kwargs, self._jitted = fun, jit_kwargs, None

    def _get(self):
        if self._jitted is None:
            options = cpu_compiler_options()
            self._jitted = jax.jit(self._fun, compiler_options=options, **self._jit_kwargs)
        return self._jitted

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def __getattr__(self, name):  # only reached for names the instance does not have
        if name.startswith("__") or name in ("_fun", "_jit_kwargs", "_jitted"):
            raise AttributeError(name)
        return getattr(self._get(), name)
