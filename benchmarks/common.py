"""Pieces the benchmarks share: the PyTorch mirror of vae_jax's MLP, interleaved timing, the
data (the base config's Fashion-MNIST, synthetic when the Debian package is missing) and
the JSON result file."""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
import torch

from vae_jax.config_lib import base_config
from vae_jax.data import DEBIAN_FASHION_MNIST_DIR, load_dataset


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
