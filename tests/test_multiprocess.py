"""Many hosts on one machine: two processes joined through jax.distributed (CPU collectives
over gloo), one CPU device each, train one run with the batch split over both, resume it,
and match the 1-process run; only process 0 writes files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from tests.helpers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, sys
sys.path.insert(0, ".")
import jax, numpy as np
from tests.helpers import tiny_config
from vae_jax import experiment
config = tiny_config(**{"parallel.data": int(sys.argv[2]), "train.num_steps": int(sys.argv[3])})
summary = experiment.run(config, sys.argv[1])
print(json.dumps({"process": jax.process_index(), "count": jax.process_count(),
                  "devices": jax.device_count(), "elbo": summary["test_elbo_nats"]}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(workdir, processes: int, devices: int, steps: int) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env["JAX_PLATFORMS"] = "cpu"  # one CPU device per process, also where a GPU is
    if processes > 1:
        env.update(JAX_COORDINATOR_ADDRESS=f"localhost:{_free_port()}")
        env.update(JAX_NUM_PROCESSES=str(processes))
    running = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(workdir), str(devices), str(steps)],
            cwd=ROOT,
            env={**env, "JAX_PROCESS_ID": str(i)} if processes > 1 else env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    outs = []
    for p in running:
        try:
            stdout, stderr = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in running:
                q.kill()
            raise
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


def _params(workdir) -> list[np.ndarray]:
    from tests.helpers import tiny_config
    from vae_jax.checkpoint import Checkpointer
    from vae_jax.state import setup

    _, template, *_ = setup(tiny_config(), (28, 28, 1), 320)
    ckpt = Checkpointer(str(workdir), read_only=True)
    try:
        return [np.asarray(x) for x in jax.tree.leaves(ckpt.restore(template).params)]
    finally:
        ckpt.close()


def test_two_processes_train_the_run_of_one(tmp_path):
    """20 steps on two processes, stopped, resumed on two processes to 30 (each restores
    the checkpoint onto its own device of the mesh): the 1-process run of 30 steps."""
    one = _launch(tmp_path / "one", processes=1, devices=1, steps=30)
    _launch(tmp_path / "two", processes=2, devices=-1, steps=20)
    two = _launch(tmp_path / "two", processes=2, devices=-1, steps=30)
    assert [o["process"] for o in two] == [0, 1]
    assert all(o["count"] == 2 and o["devices"] == 2 for o in two)  # a mesh over both hosts
    metrics_one, metrics_two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [r["step"] for r in metrics_two] == [10, 20, 30]  # one writer, resumed at 20
    assert [r["step"] for r in metrics_one] == [10, 20, 30]
    np.testing.assert_allclose(
        [r["loss"] for r in metrics_two], [r["loss"] for r in metrics_one], rtol=1e-5
    )
    for a, b in zip(_params(tmp_path / "two"), _params(tmp_path / "one"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Evaluation ran on both processes (the batches split over both), with the same result.
    assert two[0]["elbo"] == two[1]["elbo"]
    np.testing.assert_allclose(two[0]["elbo"], one[0]["elbo"], rtol=1e-5)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["test_elbo_nats"] == two[0]["elbo"]
    assert not list((tmp_path / "two").glob("*.tmp"))


def test_which_launchers_ask_for_several_processes():
    from vae_jax.distributed import requested

    assert requested({}) is None
    assert requested({"JAX_COORDINATOR_ADDRESS": "h:1"}) == "explicit"
    step = {"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "8"}
    assert requested(step) == "slurm"
    # a batch script's own step, or a one-task srun, in an allocation of several tasks
    assert requested({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8"}) is None
    assert requested({**step, "SLURM_STEP_NUM_TASKS": "1"}) is None
    assert requested({"TPU_WORKER_HOSTNAMES": "a,b"}) == "tpu"
    assert requested({"TPU_WORKER_HOSTNAMES": "a"}) is None  # a single-host TPU VM
    assert requested({**step, "VAE_JAX_DISTRIBUTED": "0"}) is None  # independent runs
