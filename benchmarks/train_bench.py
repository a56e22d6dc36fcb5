"""Training throughput of the default MLP VAE: vae_jax against a PyTorch eager loop.

    python -m benchmarks.train_bench [--steps 200 --repeats 3]

Both sides train the base config's model (784-512-256-20 ReLU MLP, Bernoulli likelihood,
N(0, I) prior, one sample of z, β = 1) from the same initial weights with Adam (lr 1e-3) on
batches of 128 Fashion-MNIST training images (synthetic ones if the Debian package is
missing), dynamically binarized, with the loss averaged over the batch: the step of
`make train`. vae_jax runs `steps` steps per call the way its train loop does
(`train.make_chunk_runner`: one jitted `lax.scan`, data resident on the device); PyTorch runs
the same index rows in a Python loop (zero_grad, forward, backward, Adam step). Times are
medians of `repeats` calls, the two taking turns, after a warm-up call (which holds XLA's
compilation); the thread count is the same. Writes JSON to --out.

The first `check_steps` steps are also run from the same weights with the same binarized
batches and the same ε on both sides, and the losses compared, so both really train the
same model with the same objective.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.common import (
    TORCH_DEVICE,
    TorchMLP,
    alternate,
    entry,
    load_base_data,
    matmul_peak_gflops,
    torch_sync,
    write_result,
)
from vae_jax import platform as vae_platform
from vae_jax.data import batch_indices
from vae_jax.hyper import hyper_from_config
from vae_jax.model import merge_model
from vae_jax.state import setup
from vae_jax.step import make_chunk_runner, make_train_step


def torch_loss(encoder, decoder, x, eps):
    """Negative ELBO averaged over the batch, one z per example. x [B, P] in {0, 1}."""
    loc, log_scale = encoder(x).chunk(2, dim=-1)
    z = loc + log_scale.exp() * eps
    logits = decoder(z)
    log_px = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(
        -1
    )
    kl = 0.5 * (loc.square() + (2 * log_scale).exp() - 1.0 - 2 * log_scale).sum(-1)
    return (kl - log_px).mean()


class TorchTrainer:
    def __init__(self, model, learning_rate):
        self.encoder, self.decoder = TorchMLP(model.encoder), TorchMLP(model.decoder)
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.opt = torch.optim.Adam(params, lr=learning_rate)

    def step(self, x, eps):
        self.opt.zero_grad(set_to_none=True)
        loss = torch_loss(self.encoder, self.decoder, x, eps)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def run(self, data_u8, rows, gen, latent_dim):
        """Steps over index rows [n, B] of data_u8 [N, P], binarizing and drawing ε here."""
        for row in rows:
            x = torch.bernoulli(data_u8[row].float() / 255.0, generator=gen)
            eps = torch.randn((len(row), latent_dim), generator=gen, device=TORCH_DEVICE)
            self.step(x, eps)
        torch_sync()


def load_train_images():
    c, dataset = load_base_data()
    return c, dataset.train_x, f"{dataset.name} train ({len(dataset.train_x)} images)"


def same_computation_check(config, graphdef, params, images, num_steps):
    """Losses of both sides over the first steps with identical x and ε. Max |Δ loss|."""
    batch, latent = config.data.batch_size, config.model.latent_dim
    _, state, tx, objective, _ = setup(config, images.shape[1:])
    trainer = TorchTrainer(
        merge_model(graphdef, params, state.model_state), config.train.learning_rate
    )
    rng = np.random.default_rng(0)
    jax_losses, torch_losses = [], []

    def fixed_loss(model, batch, key, ctx):  # ε from the key, the same on both sides
        x = batch["x"]
        eps = jax.random.normal(key, (x.shape[0], latent))
        q = model.posterior(x)
        z = q.loc + jnp.exp(q.log_scale) * eps
        log_px = model.log_px(x, z)
        kl = q.kl_per_dim_to_standard_normal().sum(-1)
        loss = jnp.mean(kl - log_px)
        return loss, {"loss": loss}

    step = jax.jit(make_train_step(graphdef, objective._replace(loss=fixed_loss), tx))
    hyper = hyper_from_config(config.hyper)
    for i in range(num_steps):
        idx = rng.integers(0, len(images), batch)
        x_bin = (rng.random((batch, *images.shape[1:])) < images[idx] / 255.0).astype(np.uint8)
        key = jax.random.key(i)
        k_obj = jax.random.split(jax.random.fold_in(key, state.step))[1]
        eps = np.array(jax.random.normal(k_obj, (batch, latent)))  # writable, for torch
        state, metrics = step(state, {"image": jnp.asarray(x_bin * 255)}, key, hyper)
        jax_losses.append(float(metrics["loss"]))
        x_t = torch.from_numpy(x_bin.reshape(batch, -1).astype(np.float32)).to(TORCH_DEVICE)
        torch_losses.append(float(trainer.step(x_t, torch.from_numpy(eps).to(TORCH_DEVICE))))
    return float(np.max(np.abs(np.subtract(jax_losses, torch_losses)))), jax_losses, torch_losses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200, help="steps per timed call")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--check_steps", type=int, default=20)
    p.add_argument("--out", default="benchmarks/results/train.json")
    args = p.parse_args(argv)

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    config, images, source = load_train_images()
    batch, latent = config.data.batch_size, config.model.latent_dim
    graphdef, state, tx, objective, key = setup(config, images.shape[1:])
    params0 = jax.tree.map(np.asarray, state.params)
    print(f"{source}; batch {batch}, {args.steps} steps per call, {threads} threads", flush=True)

    diff, jax_losses, torch_losses = same_computation_check(
        config, graphdef, params0, images, args.check_steps
    )
    print(
        f"check: {args.check_steps} steps with the same x and ε: max |loss_jax − loss_torch| = "
        f"{diff:.2e} nats (loss {jax_losses[0]:.2f} → {jax_losses[-1]:.2f})",
        flush=True,
    )

    train_step = make_train_step(
        graphdef, objective, tx, dynamic_binarize=True, guard=vae_platform.guard()
    )
    runner = make_chunk_runner(train_step, fuse_steps=vae_platform.fuse_steps(config))
    data = jax.device_put({"image": jnp.asarray(images)})
    hyper = hyper_from_config(config.hyper)
    rows = batch_indices(len(images), batch, config.seed, 0, args.steps)  # [steps, B]
    rows_jax = jnp.asarray(rows)
    jax_state = [state]

    def run_jax():
        s, metrics = runner(jax_state[0], data, rows_jax, key, hyper)
        jax.block_until_ready(metrics)
        jax_state[0] = s

    trainer = TorchTrainer(
        merge_model(graphdef, params0, state.model_state), config.train.learning_rate
    )
    data_t = torch.from_numpy(images.reshape(len(images), -1).copy()).to(TORCH_DEVICE)
    rows_t = torch.from_numpy(rows.astype(np.int64)).to(TORCH_DEVICE)
    gen = torch.Generator(device=TORCH_DEVICE).manual_seed(0)

    def run_torch():
        trainer.run(data_t, rows_t, gen, latent)

    t0 = time.perf_counter()
    run_jax()
    warmup_jax = time.perf_counter() - t0
    run_torch()
    (t_jax, times_jax), (t_torch, times_torch) = alternate([run_jax, run_torch], args.repeats)
    n = args.steps * batch
    ratio = t_torch / t_jax
    peak = matmul_peak_gflops()
    flops = training_matmul_flops(graphdef, state.params)
    fraction = n / t_jax * flops / 1e9 / peak
    print(
        f"vae_jax (jit, lax.scan over {args.steps} steps): {n / t_jax:,.0f} examples/s\n"
        f"PyTorch {torch.__version__} eager loop:          {n / t_torch:,.0f} examples/s\n"
        f"ratio vae_jax / PyTorch: {ratio:.2f}x\n"
        f"vae_jax at {n / t_jax * flops / 1e9:.0f} GFLOP/s of matmuls ({flops / 1e6:.2f} MFLOP "
        f"per example): {fraction:.0%} of the {peak:.0f} GFLOP/s float32 matmul peak measured here",
        flush=True,
    )
    result = {
        "benchmark": "training throughput, MLP VAE 784-512-256-20 bernoulli, Adam, batch 128",
        "data": source,
        "threads": threads,
        "steps_per_call": args.steps,
        "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(),
        "versions": {"jax": jax.__version__, "torch": torch.__version__},
        "check_same_x_and_eps": {
            "steps": args.check_steps,
            "max_abs_loss_diff_nats": diff,
            "jax_losses": jax_losses,
            "torch_losses": torch_losses,
        },
        "jax": {
            "median_s": t_jax,
            "examples_per_s": n / t_jax,
            "times_s": times_jax,
            "warmup_s_including_compile": warmup_jax,
        },
        "torch": {"median_s": t_torch, "examples_per_s": n / t_torch, "times_s": times_torch},
        "throughput_ratio_jax_over_torch": ratio,
        "matmul_flops_per_example": flops,
        "matmul_peak_gflops": peak,
        "fraction_of_matmul_peak": fraction,
        "entries": [
            entry(
                "train_step_mlp_batch128",
                n / t_jax,
                n / t_torch,
                "examples/s",
                reference_name=f"PyTorch {torch.__version__} eager",
                fraction_of_matmul_peak=fraction,
            )
        ],
    }
    return write_result(args.out, result)


def training_matmul_flops(graphdef, params) -> float:
    """Matmul FLOPs of one training example: 2·Σ(in·out) forward over every dense kernel,
    twice that backward (input and weight gradients), less the input gradient of the first
    encoder layer, which is never computed (the data need no gradient)."""
    del graphdef
    kernels = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if "kernel" in jax.tree_util.keystr(path) and leaf.ndim == 2
    ]
    first = params["encoder"]["hidden"][0]["kernel"][...].size
    return 6.0 * sum(k.size for k in kernels) - 2.0 * first


if __name__ == "__main__":
    main()
