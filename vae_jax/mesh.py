"""Data parallelism: a device mesh with a `data` axis, built from the config.

    mesh = make_mesh(config)            # parallel.data devices (-1: all) along "data"
    state = replicate(mesh, state)      # params and optimizer state on every device
    batch = shard_batch(mesh, batch)    # inside the step: rows split along "data"

One code path for any device count: on one device the shardings are trivial and XLA
compiles the same program as without them. The per-step key, the β values and the state
are replicated, the batch rows are split, and XLA inserts the all-reduce of the gradient
(jit's computation-follows-sharding), so a sharded step computes the same update as an
unsharded one, up to the order of the floating-point sums.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vae_jax.errors import ConfigError

DATA = "data"


def make_mesh(config) -> Mesh:
    """A 1-D mesh of `parallel.data` devices along the axis "data"; -1: as many of all
    the devices as split data.batch_size evenly (a note says when that is not all)."""
    available = jax.devices()
    wanted = config.parallel.data
    count = len(available) if wanted == -1 else wanted
    if jax.process_count() > 1:  # every host's devices, or some hosts would hold nothing
        if count != len(available) or config.data.batch_size % count:
            raise ConfigError(
                f"config.parallel.data={wanted!r} with data.batch_size="
                f"{config.data.batch_size} is invalid for {jax.process_count()} processes: a "
                f"multi-host run uses all {len(available)} devices (parallel.data=-1) and a "
                f"batch size that is a multiple of {len(available)}"
            )
    elif wanted == -1:  # all devices that divide the batch evenly
        count = max(d for d in range(1, count + 1) if config.data.batch_size % d == 0)
        if count < len(available):
            print(
                f"note: parallel.data=-1 uses {count} of {len(available)} devices "
                f"(data.batch_size={config.data.batch_size} splits evenly over {count})",
                flush=True,
            )
    if not isinstance(count, int) or count < 1 or count > len(available):
        raise ConfigError(
            f"config.parallel.data={wanted!r} is invalid: -1 (all) or 1..{len(available)} "
            f"(JAX finds {len(available)} {jax.default_backend()} device(s))"
        )
    if config.data.batch_size % count:
        raise ConfigError(
            f"config.data.batch_size={config.data.batch_size} is invalid: it must divide "
            f"evenly over the {count} devices of parallel.data; use a multiple of {count}"
        )
    return Mesh(np.asarray(available[:count]), (DATA,))


def evaluation_mesh(config) -> Mesh:
    """The run's mesh for re-evaluating it (python -m vae_jax.evaluate); on a machine that
    cannot build it (fewer devices than parallel.data), one device, with a note."""
    try:
        return make_mesh(config)
    except ConfigError as error:
        print(f"note: evaluating on one device ({error})", flush=True)
        return Mesh(np.asarray(jax.devices()[:1]), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def replicate(mesh: Mesh, tree):
    """Every leaf of `tree` on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def data_mesh_of(tree) -> Mesh | None:
    """The mesh of `tree`'s arrays when they are placed on one with a "data" axis of more
    than one device (a replicated TrainState or variables), else None. Evaluation follows
    it: vae_jax.apply splits every batch's rows over that axis."""
    leaves = jax.tree.leaves(tree)
    sharding = getattr(leaves[0], "sharding", None) if leaves else None
    if not isinstance(sharding, NamedSharding) or DATA not in sharding.mesh.axis_names:
        return None
    return sharding.mesh if sharding.mesh.shape[DATA] > 1 else None


def rows_on(mesh: Mesh, batch_size: int) -> tuple[int, NamedSharding]:
    """(the batch size rounded up to a multiple of the "data" devices, the sharding that
    splits rows over them). The extra rows are padding that the caller drops."""
    n = mesh.shape[DATA]
    return -(-batch_size // n) * n, NamedSharding(mesh, PartitionSpec(DATA))


def shard_batch(mesh: Mesh | None, batch: dict) -> dict:
    """Inside a traced step: constrain each array's leading (row) axis to the "data" axis."""
    if mesh is None or mesh.size == 1:
        return batch
    rows = NamedSharding(mesh, PartitionSpec(DATA))
    return {k: jax.lax.with_sharding_constraint(v, rows) for k, v in batch.items()}
