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
- SLURM: a job step (`srun`) of more than one task, SLURM_STEP_NUM_TASKS > 1; a batch
  script's own step is one task, whatever the allocation's --ntasks;
- a Cloud TPU pod slice: TPU_WORKER_HOSTNAMES naming more than one host
  (`gcloud compute tpus tpu-vm ssh ... --worker=all --command=...`).
JAX's initialize() finds the coordinator of a SLURM job or a TPU slice itself. On CPUs the
processes' collectives go through gloo. VAE_JAX_DISTRIBUTED=0 turns the detection off
(independent runs launched side by side, e.g. `srun -n 4` with one seed per task).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils

from vae_jax.errors import ConfigError

_STATE = {"initialized": False, "process": 0}


def requested(env=os.environ) -> str | None:
    """Which launcher asks for several processes ("explicit", "slurm", "tpu"), or None."""
    if env.get("VAE_JAX_DISTRIBUTED", "1") == "0":
        return None
    if env.get("JAX_COORDINATOR_ADDRESS"):
        return "explicit"
    step_tasks = env.get("SLURM_STEP_NUM_TASKS", "1")
    if env.get("SLURM_STEP_ID") and step_tasks.isdigit() and int(step_tasks) > 1:
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
    """Whether this process writes files: process 0, or the only one. Starts no backend;
    once one runs, JAX's own process index decides (a runtime that joined the hosts
    without `initialize` here, e.g. a TPU slice started otherwise, is covered too)."""
    if _STATE["initialized"]:
        return _STATE["process"] == 0
    try:
        from jax._src import xla_bridge  # noqa: PLC0415  (no public "has it started?")

        started = xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):
        started = False
    return not started or jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """Whether `flag` holds on any process (every process must call this at the same
    point): a decision that changes which collectives run next, such as stopping on a
    signal that reached some hosts only, is then the same on all of them."""
    if not _STATE["initialized"] or jax.process_count() == 1:
        return flag
    return bool(multihost_utils.process_allgather(np.int32(flag)).max())


def refuse_many(what: str) -> None:
    """ConfigError when this run has several processes and `what` runs on one host only."""
    if jax.process_count() > 1:
        raise ConfigError(
            f"{what} runs on one host; it was launched as {jax.process_count()} processes "
            "(JAX_COORDINATOR_ADDRESS, SLURM or a TPU pod slice): launch it as one process"
        )
