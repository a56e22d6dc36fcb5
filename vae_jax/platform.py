"""Which backend a run uses, and the software versions behind its numbers.

Every run prints `describe(info())` at its start and stores `info()` in summary.json,
eval.json and the report, so a number can be traced to the hardware and the versions that
produced it. `require_accelerator(config)` turns a run that asked for a GPU or TPU but
found only the CPU into one clear error instead of a silent, slow CPU run.
"""

from __future__ import annotations

import platform
import sys

import jax

from vae_jax.errors import ConfigError


def info() -> dict:
    """Backend, device kind and count, and the versions of the numeric stack."""
    import flax
    import jaxlib
    import optax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def describe(i: dict) -> str:
    return (
        f"backend {i['backend']} ({i['device_count']} × {i['device_kind']}); jax {i['jax']}, "
        f"jaxlib {i['jaxlib']}, flax {i['flax']}, optax {i['optax']}, Python {i['python']}"
    )


def require_accelerator(config) -> None:
    """ConfigError when config.train.require_accelerator is set and JAX sees only a CPU."""
    if config.train.require_accelerator and jax.default_backend() == "cpu":
        raise ConfigError(
            "config.train.require_accelerator=True but JAX found only the CPU: install the "
            "accelerator's jax plugin (GPU: pip install -e '.[cuda]'; TPU VM: pip install -e "
            "'.[tpu]'), check `python -c \"import jax; print(jax.devices())\"`, or set "
            "--config.train.require_accelerator=False to run on the CPU"
        )


if __name__ == "__main__":  # python -m vae_jax.platform
    print(describe(info()), file=sys.stdout)
