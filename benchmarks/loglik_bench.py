"""Importance-sampled log p(x) throughput at K = 5000: vae_jax (jitted, chunked lax.scan)
against a PyTorch eager implementation of the same computation with the same weights.

    python -m benchmarks.loglik_bench [--num_images 100 --K 5000 --chunk 100]

Model: the base config's MLP VAE (784-512-256-20, ReLU, Bernoulli likelihood, N(0, I)
prior) with random-init weights (seed 0): throughput does not depend on training. Images:
the first `num_images` Fashion-MNIST test images (fixed Bernoulli binarization, as the
evaluator sees them) when /usr/share/datasets/fashion-mnist exists, else synthetic ones.

Both sides stream K in chunks with a running max-shifted logsumexp (Burda et al. 2015,
eq. 8) over batches of `batch_size` images, in one process with the same thread count. The
check feeds PyTorch the exact ε that vae_jax draws (chunk i of batch b from
fold_in(fold_in(key, b), i)) and reports the max |Δ log p(x)|; the timed PyTorch runs draw
their own ε with torch.randn. Times are medians of `repeats` runs after a warm-up run
(which holds XLA's compilation). A sweep over chunk sizes picks the fastest JAX chunk.
Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time

import jax
import numpy as np
import torch
from flax import nnx

from vae_jax.config_lib import base_config
from vae_jax.data import DEBIAN_FASHION_MNIST_DIR, load_dataset
from vae_jax.evaluate.loglik import dataset_log_likelihood, summarize_log_likelihood
from vae_jax.model import build_model

_LOG_2PI = math.log(2.0 * math.pi)


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


def torch_importance_log_likelihood(encoder, decoder, x, num_samples, chunk_size, noise):
    """The same estimator as vae_jax.evaluate.loglik, eager. x [B, P] in [0, 1] -> [B].

    noise(i, n) gives ε [n, B, D] for chunk i.
    """
    loc, log_scale = encoder(x).chunk(2, dim=-1)  # [B, D] each
    scale = log_scale.exp()
    chunk_size = min(chunk_size, num_samples)
    sizes = [chunk_size] * (num_samples // chunk_size)
    if num_samples % chunk_size:
        sizes.append(num_samples % chunk_size)
    m = torch.full((x.shape[0],), -math.inf)
    s = torch.zeros(x.shape[0])
    for i, n in enumerate(sizes):
        z = loc + scale * noise(i, n)  # [n, B, D]
        logits = decoder(z)  # [n, B, P]
        log_px = -(logits.clamp_min(0) - logits * x + torch.log1p(torch.exp(-logits.abs())))
        log_pz = -0.5 * (z.square() + _LOG_2PI).sum(-1)
        log_qz = -0.5 * (((z - loc) / scale).square() + _LOG_2PI + 2.0 * log_scale).sum(-1)
        log_w = log_px.sum(-1) + log_pz - log_qz  # [n, B]
        m_new = torch.maximum(m, log_w.max(0).values)
        s = s * torch.exp(m - m_new) + torch.exp(log_w - m_new).sum(0)
        m = m_new
    return m + torch.log(s) - math.log(num_samples)


def torch_dataset_log_likelihood(
    encoder, decoder, images_u8, *, num_samples, chunk_size, batch_size, noise_for_batch
):
    """Batches padded like vae_jax's driver. noise_for_batch(b) -> noise(i, n)."""
    out = []
    with torch.inference_mode():
        for b, start in enumerate(range(0, len(images_u8), batch_size)):
            chunk = images_u8[start : start + batch_size]
            pad = batch_size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            x = torch.from_numpy(chunk.reshape(batch_size, -1).astype(np.float32) / 255.0)
            values = torch_importance_log_likelihood(
                encoder, decoder, x, num_samples, chunk_size, noise_for_batch(b)
            )
            out.append(values.numpy()[: batch_size - pad])
    return np.concatenate(out)


def jax_noise(key, latent_dim, batch_size):
    """ε exactly as loglik.importance_log_likelihood draws it through DiagGaussian.sample."""

    def for_batch(b):
        kb = jax.random.fold_in(key, b)

        def noise(i, n):
            eps = jax.random.normal(jax.random.fold_in(kb, i), (n, batch_size, latent_dim))
            return torch.from_numpy(np.array(eps))

        return noise

    return for_batch


def torch_noise(seed, latent_dim, batch_size):
    gen = torch.Generator().manual_seed(seed)
    return lambda b: lambda i, n: torch.randn((n, batch_size, latent_dim), generator=gen)


def timed(fn, repeats):
    """Median wall time of `repeats` calls (the caller has already warmed fn up)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def load_images(num_images: int):
    c = base_config()
    if not os.path.isdir(DEBIAN_FASHION_MNIST_DIR):
        c.data.name, c.data.val_size = "synthetic", 200
    dataset = load_dataset(c.data)
    return (
        c,
        dataset.test_x[:num_images],
        f"{dataset.name} test[:{num_images}] ({dataset.binarization})",
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num_images", type=int, default=100)
    p.add_argument("--K", type=int, default=5000)
    p.add_argument("--chunk", type=int, default=100)
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sweep_chunks", default="50,100,250,500,1000", help="'' skips the sweep")
    p.add_argument("--sweep_repeats", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/loglik.json")
    args = p.parse_args(argv)

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    config, images, source = load_images(args.num_images)
    n, bs, k = len(images), min(args.batch_size, len(images)), args.K
    model = build_model(config.model, images.shape[1:], jax.random.key(0))
    graphdef, params = nnx.split(model)
    encoder, decoder = TorchMLP(model.encoder).eval(), TorchMLP(model.decoder).eval()
    latent_dim = config.model.latent_dim
    key = jax.random.key(1)
    load_at_start = os.getloadavg()[0]
    print(
        f"{source}; K={k}, chunk={args.chunk}, batch={bs}, {threads} threads; "
        f"load average {load_at_start:.1f}",
        flush=True,
    )

    def run_jax(chunk):
        return dataset_log_likelihood(
            graphdef, params, images, key, num_samples=k, chunk_size=chunk, batch_size=bs
        )

    def run_torch(chunk, noise_for_batch):
        return torch_dataset_log_likelihood(
            encoder,
            decoder,
            images,
            num_samples=k,
            chunk_size=chunk,
            batch_size=bs,
            noise_for_batch=noise_for_batch,
        )

    t0 = time.perf_counter()
    values_jax = run_jax(args.chunk)  # warm-up: compiles
    warmup_jax = time.perf_counter() - t0
    values_torch = run_torch(args.chunk, jax_noise(key, latent_dim, bs))  # same ε; warm-up
    max_abs_diff = float(np.abs(values_jax - values_torch).max())
    print(
        f"check: max |log p_jax − log p_torch| = {max_abs_diff:.2e} nats on {n} images "
        f"(mean log p(x) {values_jax.mean():.2f} vs {values_torch.mean():.2f})",
        flush=True,
    )

    t_jax, times_jax = timed(lambda: run_jax(args.chunk), args.repeats)
    t_torch, times_torch = timed(
        lambda: run_torch(args.chunk, torch_noise(0, latent_dim, bs)), args.repeats
    )
    sweep = {}
    for chunk in [int(c) for c in args.sweep_chunks.split(",") if c]:
        if chunk != args.chunk:
            run_jax(chunk)  # compile
        t, _ = timed(lambda c=chunk: run_jax(c), args.sweep_repeats)
        sweep[chunk] = n / t
        print(f"  sweep: JAX chunk {chunk:>5}: {n / t:8.2f} images/s", flush=True)

    rows = [("JAX (jit, lax.scan)", t_jax), ("PyTorch (eager)", t_torch)]
    print(f"\nlog p(x), K={k}, chunk={args.chunk}, {n} images, batch {bs}, {threads} threads")
    print(f"{'implementation':<22}{'median s':>10}{'images/s':>11}")
    for name, t in rows:
        print(f"{name:<22}{t:>10.2f}{n / t:>11.2f}")
    ratio = t_torch / t_jax
    print(f"throughput ratio JAX/PyTorch: {ratio:.2f}×")
    if sweep:
        best = max(sweep, key=sweep.get)
        print(f"fastest JAX chunk: {best} ({sweep[best]:.2f} images/s)")

    result = {
        "benchmark": "importance-sampled log p(x), MLP VAE 784-512-256-20 bernoulli",
        "weights": "random init, seed 0 (throughput does not depend on training)",
        "images": source,
        "num_images": n,
        "K": k,
        "chunk_size": args.chunk,
        "batch_size": bs,
        "threads": threads,
        "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(),
        "load_average_1min_at_start": load_at_start,
        "versions": {"jax": jax.__version__, "torch": torch.__version__},
        "jax": {
            "median_s": t_jax,
            "images_per_s": n / t_jax,
            "times_s": times_jax,
            "warmup_s_including_compile": warmup_jax,
        },
        "torch": {"median_s": t_torch, "images_per_s": n / t_torch, "times_s": times_torch},
        "throughput_ratio_jax_over_torch": ratio,
        "check_same_eps": {
            "max_abs_diff_nats": max_abs_diff,
            "jax_summary": summarize_log_likelihood(values_jax, int(np.prod(images.shape[1:]))),
            "torch_mean_log_likelihood_nats": float(values_torch.mean()),
        },
        "jax_chunk_sweep_images_per_s": {str(c): v for c, v in sweep.items()},
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
