"""Many hosts: JAX's multi-controller runtime (jax.distributed), started when the
environment asks for it. We write no runtime of our own.

Every process runs the same program on its own devices. Once initialized, jax.devices()
lists the devices of all processes, so the mesh's "data" axis (vae_jax/mesh.py) spans the
hosts: the state is replicated on every device, the rows of each global batch are split
over all of them, and XLA all-reduces the gradient across hosts. Each process holds the
(small) training set and gathers only its devices' rows of every batch. Only process 0
writes files (`is_writer`; the workdir lock, metrics, the record, the figures and the
reports); checkpoints go through orbax, which every process calls and which writes the
replicated arrays once.

What asks for it, in this order:
- JAX_COORDINATOR_ADDRESS=host:port with JAX_NUM_PROCESSES and JAX_PROCESS_ID: an explicit
  launch (any cluster; the tests use localhost);
- SLURM: SLURM_JOB_ID with SLURM_NTASKS > 1 (`srun`, one task per node or per GPU);
- a Cloud TPU pod slice: TPU_WORKER_HOSTNAMES naming more than one host
  (`gcloud compute tpus tpu-vm ssh ... --worker=all --command=...`).
JAX's initialize() finds the coordinator of a SLURM job or a TPU slice itself. On CPUs the
processes' collectives go through gloo.
"""

from __future__ import annotations

import os

import jax

from vae_jax.errors import ConfigError

_STATE = {"initialized": False, "process": 0}


def requested(env=os.environ) -> str | None:
    """Which launcher asks for several processes ("explicit", "slurm", "tpu"), or None."""
    if env.get("JAX_COORDINATOR_ADDRESS"):
        return "explicit"
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return "slurm"
    if len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]) > 1:
        return "tpu"
    return None


def initialize(env=os.environ) -> None:
    """jax.distributed.initialize() when `requested`, before JAX starts its backend; a
    no-op otherwise, and when already done."""
    kind = requested(env)
    if kind is None or _STATE["initialized"]:
        return
    kwargs = {}
    if kind == "explicit":
        missing = [v for v in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID") if not env.get(v)]
        if missing:
            raise ConfigError(
                f"JAX_COORDINATOR_ADDRESS is set but {' and '.join(missing)} not: set all "
                "three (host:port of process 0, the number of processes, this one's index)"
            )
        try:
            kwargs = dict(
                coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
                num_processes=int(env["JAX_NUM_PROCESSES"]),
                process_id=int(env["JAX_PROCESS_ID"]),
            )
        except ValueError:
            raise ConfigError(
                f"JAX_NUM_PROCESSES={env['JAX_NUM_PROCESSES']!r} and JAX_PROCESS_ID="
                f"{env['JAX_PROCESS_ID']!r} must be integers"
            ) from None
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes only
    jax.distributed.initialize(**kwargs)
    _STATE.update(initialized=True, process=jax.process_index())
    print(
        f"process {jax.process_index()} of {jax.process_count()} ({kind}): "
        f"{jax.local_device_count()} local of {jax.device_count()} devices",
        flush=True,
    )


def is_writer() -> bool:
    """Whether this process writes files: process 0, or the only one. Starts no backend."""
    return _STATE["process"] == 0


def refuse_many(what: str) -> None:
    """ConfigError when this run has several processes and `what` runs on one host only."""
    if _STATE["initialized"] and jax.process_count() > 1:
        raise ConfigError(
            f"{what} runs on one host; it was launched as {jax.process_count()} processes "
            "(JAX_COORDINATOR_ADDRESS, SLURM or a TPU pod slice): launch it as one process"
        )
