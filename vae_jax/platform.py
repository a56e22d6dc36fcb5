"""Which backend a run uses, and the software versions behind its numbers.

Every run prints `describe(info())` at its start and stores `info()` in summary.json,
eval.json and the report, so a number can be traced to the hardware and the versions that
produced it. `require_accelerator(config)` turns a run that asked for a GPU or TPU but
found only the CPU into one clear error instead of a silent, slow CPU run.
"""

from __future__ import annotations

import os
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


# ----------------------------------------------------------------------- backend-aware defaults

DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def _switch(value, auto: bool) -> bool:
    """A config switch: True/False, or the strings auto | true | false (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    return auto if text == "auto" else text in ("true", "1", "yes")


def _conv_on_cpu(config) -> bool:
    return jax.default_backend() == "cpu" and config.model.net == "conv"


def fuse_steps(config) -> bool:
    """train.fuse_steps resolved: auto fuses, except conv nets on the CPU."""
    return _switch(config.train.fuse_steps, auto=not _conv_on_cpu(config))


def cpu_tuning(config) -> bool:
    """train.cpu_tuning resolved: auto is on for conv nets on the CPU (off elsewhere)."""
    return _switch(config.train.cpu_tuning, auto=_conv_on_cpu(config))


def loglik_chunk(config) -> int:
    """eval.loglik_chunk resolved: 0 is 50 on the CPU and 1000 on an accelerator."""
    if config.eval.loglik_chunk:
        return int(config.eval.loglik_chunk)
    return 50 if jax.default_backend() == "cpu" else 1000


def execution(config) -> dict:
    """How this run executes here, with every `auto` resolved (for summary.json)."""
    return {
        "fuse_steps": fuse_steps(config),
        "cpu_tuning": cpu_tuning(config),
        "loglik_chunk": loglik_chunk(config),
        "matmul_precision": config.train.matmul_precision,
        "compute_dtype": config.train.compute_dtype,
        "deterministic_gpu_ops": DETERMINISTIC_FLAG in os.environ.get("XLA_FLAGS", ""),
    }


def configure(config) -> None:
    """Process settings a config asks for that must precede JAX's backend start:
    deterministic GPU ops (train.deterministic) through XLA_FLAGS. Harmless on a CPU."""
    if config.train.get("deterministic", False):
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_FLAG}".strip()
