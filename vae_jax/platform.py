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


def loglik_chunk(config, num_params: int = 1) -> int:
    """eval.loglik_chunk resolved: 0 is 50 on the CPU and 1000 / num_params on an
    accelerator, where the decoder's output for a chunk (chunk · batch · pixels ·
    num_params floats: 0.3 GB for a Bernoulli at batch 100) sets the memory; a mixture
    likelihood's 15 parameters per pixel would need 4.7 GB at 1000."""
    if config.eval.loglik_chunk:
        return int(config.eval.loglik_chunk)
    return 50 if jax.default_backend() == "cpu" else max(1, 1000 // num_params)


def guard() -> str:
    """How the train step skips a non-finite update here: "cond" on the CPU (it saves a
    pass over params and Adam's moments), "where" on accelerators (fused into the update,
    with no predicate to bring back to the host)."""
    return "cond" if jax.default_backend() == "cpu" else "where"


def execution(config) -> dict:
    """How this run executes here, with every `auto` resolved (for summary.json)."""
    return {
        "fuse_steps": fuse_steps(config),
        "cpu_tuning": cpu_tuning(config),
        "loglik_chunk": loglik_chunk(config),
        "matmul_precision": config.train.matmul_precision,
        "compute_dtype": config.train.compute_dtype,
        "nonfinite_guard": guard(),
        "deterministic_gpu_ops": deterministic_status(config),
    }


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a jax without it: assume the worst
        return True


def _flag_set() -> bool:
    """XLA_FLAGS asks for deterministic GPU ops (the bare flag or =true)."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        name, _, value = flag.partition("=")
        if name == "--xla_gpu_deterministic_ops":
            return value.lower() in ("", "true", "1")
    return False


# Whether XLA_FLAGS asked for deterministic ops when the backend started (None: not known,
# because the backend started before configure() ran in this process).
_FLAG_AT_START: bool | None = None


def configure(config) -> None:
    """Process settings a config asks for that must precede JAX's backend start:
    deterministic GPU ops (train.deterministic) through XLA_FLAGS. Once the backend has
    started, XLA_FLAGS is left alone (it would no longer take effect)."""
    global _FLAG_AT_START
    if _backends_started():
        return
    if config.train.get("deterministic", False) and not _flag_set():
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_FLAG}".strip()
    _FLAG_AT_START = _flag_set()


def deterministic_status(config) -> dict:
    """{"requested", "in_effect"}: in effect means a GPU backend that started with the flag
    (None where it does not apply, on CPU and TPU, or cannot be known)."""
    requested = bool(config.train.get("deterministic", False))
    in_effect = None
    if jax.default_backend() == "gpu" and _FLAG_AT_START is not None:
        in_effect = _FLAG_AT_START
    return {"requested": requested, "in_effect": in_effect}
