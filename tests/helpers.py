"""Small builders shared by the tests: tiny configs, IDX writers and metrics readers."""

from __future__ import annotations

import gzip
import json
import os
import struct
import sys

import jax
import numpy as np

from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.train import TIMING_KEYS


def tiny_config(**overrides):
    """A runlocal-sized config on synthetic data: a few seconds per run on 2 CPU cores.

    40 steps of batch 16, logged every 10 and checkpointed every 20; a one-layer MLP with a
    4-d latent. `overrides` maps field names to values: `seed=1`, or dotted names such as
    `**{"hyper.beta": 2.0}`.
    """
    c = apply_runlocal(base_config())
    c.data.name = "synthetic"
    c.data.synthetic_size = 400
    c.data.val_size = 80
    c.data.batch_size = 16
    c.model.mlp.hidden_dims = (32,)
    c.model.latent_dim = 4
    c.train.learning_rate = 3e-3
    c.eval.max_examples = 32
    c.eval.batch_size = 32
    c.eval.num_figure_examples = 0
    c.eval.diagnostics = False  # the end-of-run evaluation is tested in tests/evaluate/
    for field, value in overrides.items():
        *sections, name = field.split(".")
        node = c
        for section in sections:
            node = node[section]
        node[name] = value
    return c


def read_metrics(workdir: str, drop_timing: bool = True) -> list[dict]:
    """metrics.jsonl as a list of dicts, without the wall-clock keys by default."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    if drop_timing:
        records = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]
    return records


def tree_equal(a, b) -> bool:
    """Exact equality of two pytrees of arrays with the same structure."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    same_structure = jax.tree.structure(a) == jax.tree.structure(b)
    return same_structure and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format: 0, 0, type 0x08, ndim, big-endian sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: str, array: np.ndarray, compress: bool = False) -> str:
    data = idx_bytes(array)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return path


RUNLOCAL = "experiments/configs/fashion_mnist_mlp.py:runlocal"


def main_command(workdir, flags: dict, config: str = RUNLOCAL) -> list[str]:
    """`python -m vae_jax.main --config=CONFIG --workdir=WORKDIR --config.K=V ...`."""
    return [
        sys.executable,
        "-m",
        "vae_jax.main",
        f"--config={config}",
        f"--workdir={workdir}",
        *(f"--config.{k}={v}" for k, v in flags.items()),
    ]
