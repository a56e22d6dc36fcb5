"""A β-sweep as one vmapped program against the same members run one after another.

    python -m benchmarks.sweep_bench [--members 8 --steps 100 --repeats 5]

Both sides train the base config's MLP VAE (batch 128, Adam, dynamic binarization) on the
same device-resident data, each member with its own β and batch order. "Sequential" is the
single run's chunk runner (vae_jax.train's: one jitted `lax.scan` of `steps` steps, the CPU
guard with its chunk-level finiteness redo), timed for one member and multiplied by the
member count, which is what running the members one after another costs, without their
start-up and compilation. "Vmapped" is vae_jax.sweep's runner: the same scan vmapped over
the stacked members, with the per-step finiteness check. Throughput is examples/s over all
members; the ratio is vmapped over sequential (the issue's target: ≥ 1.0 on the CPU).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import alternate, entry, load_base_data, write_result
from vae_jax.data import batch_indices
from vae_jax.hyper import Hyper
from vae_jax.state import setup
from vae_jax.step import make_chunk_runner, make_train_step
from vae_jax.sweep.loop import make_sweep_runner, stack


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/sweep.json")
    args = parser.parse_args(argv)
    m, n = args.members, args.steps
    config, dataset = load_base_data()
    graphdef, state, tx, objective, key = setup(config, dataset.shape, len(dataset.train_x))
    data = jax.device_put({"image": dataset.train_x})
    count, batch = len(dataset.train_x), config.data.batch_size

    def step(**kw):
        return make_train_step(graphdef, objective, tx, dynamic_binarize=True, **kw)

    single = make_chunk_runner(
        step(guard="cond"), True, length=n, checked_step=step(guard="cond", check_state=True)
    )
    swept = make_sweep_runner(step(guard="where", check_state=True))
    idx_one = jnp.asarray(batch_indices(count, batch, 0, 0, n))
    idx_all = jnp.asarray(np.stack([batch_indices(count, batch, s, 0, n) for s in range(m)]))
    active, keys = jnp.ones((n,), bool), jnp.stack([key] * m)
    betas = Hyper(beta=jnp.linspace(0.25, 8.0, m, dtype=jnp.float32))
    states = {"one": jax.tree.map(jnp.copy, state), "all": stack([state] * m)}

    def run_one():
        states["one"], metrics = single(states["one"], data, idx_one, key, Hyper())
        jax.block_until_ready(metrics)

    def run_all():
        states["all"], metrics = swept(states["all"], data, idx_all, active, keys, betas)
        jax.block_until_ready(metrics)

    run_one(), run_all()  # compile
    (t_one, _), (t_all, _) = alternate([run_one, run_all], args.repeats)
    sequential = n * batch / t_one  # examples/s of any number of members run in turn
    vmapped = m * n * batch / t_all
    print(
        f"{m} members: vmapped {vmapped:,.0f} examples/s, sequential {sequential:,.0f}; "
        f"ratio {vmapped / sequential:.2f}",
        flush=True,
    )
    result = {
        "benchmark": f"β-sweep of {m} MLP VAEs, batch {batch}, {n} steps per call",
        "vmapped_examples_per_sec": vmapped,
        "sequential_examples_per_sec": sequential,
        "entries": [entry(f"sweep_{m}_members_mlp", vmapped, sequential, "examples/s", members=m)],
    }
    return write_result(args.out, result)
