"""Fixed-size batches over a host array, so a jitted function compiles once per data set.

The last batch is padded with zeros to `batch_size` and the padded rows are dropped from
the result. Evaluators and figures all run their per-batch functions through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from vae_jax.progress import Progress


def pad_batch(chunk: np.ndarray, batch_size: int) -> np.ndarray:
    """[n, ...] with n <= batch_size -> [batch_size, ...], zero rows appended."""
    chunk = np.asarray(chunk)
    pad = batch_size - len(chunk)
    if pad < 0:
        raise ValueError(f"batch of {len(chunk)} rows is larger than batch_size={batch_size}")
    if pad:
        chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
    return chunk


def map_padded_batches(
    fn: Callable[[int, jax.Array], Any],
    array: np.ndarray,
    batch_size: int,
    *,
    progress: str | None = None,
    place: Callable[[np.ndarray], jax.Array] = jnp.asarray,
) -> Any:
    """fn(i, batch_i) over `array` [N, ...] in batches of `batch_size`, batch_i [batch_size, ...].

    fn returns a pytree of arrays with a leading batch axis; the result is that pytree with
    the batches concatenated along axis 0 and the padding dropped ([N, ...] leaves). The
    batch index i lets fn fold it into a key. `progress` names the phase for a progress line
    (batches done, elapsed, ETA); None prints nothing. `place` puts a padded batch on the
    device(s) (a sharding's device_put: its rows split over a mesh).
    """
    n = len(array)
    if n == 0:
        raise ValueError("no examples to evaluate: the array is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outs = []
    num_batches = -(-n // batch_size)
    bar = Progress(progress, num_batches) if progress else None
    for i, start in enumerate(range(0, n, batch_size)):
        chunk = np.asarray(array[start : start + batch_size])
        keep = len(chunk)
        out = fn(i, place(pad_batch(chunk, batch_size)))
        # Results stay on the device while batches are queued (no host round trip per
        # batch); a progress line waits for each batch, so that its ETA means something.
        outs.append(jax.tree.map(lambda v, keep=keep: v[:keep], out))
        if bar:
            jax.block_until_ready(out)
            bar.update(i + 1)
    return jax.tree.map(lambda *leaves: np.concatenate([to_host(v) for v in leaves]), *outs)


def to_host(value) -> np.ndarray:
    """A device array as numpy; one split over several hosts' devices (a multi-host
    mesh) is gathered from all of them (every process must call this)."""
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(jax.device_get(value))
