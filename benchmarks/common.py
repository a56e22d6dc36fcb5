"""Pieces the benchmarks share: the PyTorch mirror of vae_jax's MLP, interleaved timing, the
data (the base config's Fashion-MNIST, synthetic when the Debian package is missing) and
the JSON result file."""

from __future__ import annotations

import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from vae_jax import platform
from vae_jax.config_lib import base_config
from vae_jax.data import DEBIAN_FASHION_MNIST_DIR, load_dataset

# The reference runs where JAX runs: CUDA when JAX has a GPU and this torch build has CUDA.
TORCH_DEVICE = torch.device(
    "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
)
if TORCH_DEVICE.type == "cuda":
    # Like for like: JAX's default float32 matmuls on NVIDIA GPUs use TF32; so does torch's.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def torch_sync() -> None:
    """Wait for queued CUDA work, so that wall times measure it."""
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.synchronize()


def device_name() -> str:
    i = platform.info()
    return f"{i['backend']}: {i['device_count']} × {i['device_kind']}"


def matmul_peak_gflops(n: int = 2048, chain: int = 8, repeats: int = 5) -> float:
    """The float32 matmul throughput this machine reaches in JAX at the backend's default
    precision (the peak the training step is held to): the best of `repeats` calls, each
    `chain` n×n products in one jitted loop, so dispatch does not count."""
    a = jnp.full((n, n), 1.0 / n, jnp.float32)  # a @ a stays a: no overflow down the chain
    f = jax.jit(lambda a: jax.lax.fori_loop(0, chain, lambda _, x: x @ a, a))
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 * chain / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def entry(name: str, ours: float, reference: float | None, unit: str, **extra) -> dict:
    """One row of bench.json: higher is better for every unit used here (throughputs)."""
    ratio = None if not reference else ours / reference
    return {
        "name": name,
        "ours": ours,
        "reference": reference,
        "ratio": ratio,
        "unit": unit,
        "device": device_name(),
        "reference_device": str(TORCH_DEVICE),
        **extra,
    }


class TorchMLP(torch.nn.Module):
    """vae_jax.nets.mlp's encoder or decoder body, weights copied from an nnx MLP.

    flax's Linear stores kernel [in, out] (y = x K + b); torch's stores weight [out, in].
    """

    def __init__(self, nnx_mlp):
        super().__init__()
        layers = [*nnx_mlp.hidden, nnx_mlp.out]
        self.linears = torch.nn.ModuleList()
        for layer in layers:
            kernel, bias = np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])
            linear = torch.nn.Linear(*kernel.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
                linear.bias.copy_(torch.from_numpy(bias.copy()))
            self.linears.append(linear)
        self.to(TORCH_DEVICE)
        if nnx_mlp.activation != "relu":
            raise ValueError(f"benchmark mirrors relu MLPs only, got {nnx_mlp.activation}")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for linear in self.linears[:-1]:
            h = torch.relu(linear(h))
        return self.linears[-1](h)


def alternate(fns, repeats):
    """Median wall time of each fn over `repeats` rounds, run in turn (ABAB...) so that load
    from other processes hits every fn alike. The caller has warmed them up."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [(statistics.median(ts), ts) for ts in times]


def load_base_data():
    """(base config, its dataset); synthetic data if Fashion-MNIST is not installed."""
    c = base_config()
    if not os.path.isdir(DEBIAN_FASHION_MNIST_DIR):
        c.data.name, c.data.val_size = "synthetic", 200
    return c, load_dataset(c.data)


def write_result(path: str, result: dict) -> dict:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path}")
    return result
