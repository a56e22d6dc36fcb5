"""Importance-sampled log p(x) throughput at K = 5000: vae_jax (jitted, chunked lax.scan)
against a PyTorch eager implementation of the same computation with the same weights.

    python -m benchmarks.loglik_bench [--num_images 100 --K 5000 --chunk 50]

Model: the base config's MLP VAE (784-512-256-20, ReLU, Bernoulli likelihood, N(0, I)
prior) with random-init weights (seed 0): throughput does not depend on training. Images:
the first `num_images` Fashion-MNIST test images (fixed Bernoulli binarization, as the
evaluator sees them) when /usr/share/datasets/fashion-mnist exists, else synthetic ones.

Both sides stream K in chunks with a running max-shifted logsumexp (Burda et al. 2015,
eq. 8) over batches of `batch_size` images, in one process with the same thread count. The
check feeds PyTorch the exact ε that vae_jax draws (chunk i of batch b from
fold_in(fold_in(key, b), i)) and reports the max |Δ log p(x)|; the timed PyTorch runs draw
their own ε with torch.randn. Times are medians of `repeats` runs, JAX and PyTorch taking
turns, after a warm-up run (which holds XLA's compilation). A sweep over chunk sizes (at
K = sweep_K, round-robin, best of sweep_repeats) picks the fastest JAX chunk. Unless
--no-untuned, everything is measured again in a child process with VAE_JAX_CPU_TUNING=0
(plain jax.jit, without vae_jax.cpu_tuning's per-computation XLA options). Writes JSON to
--out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import torch
from flax import nnx

from benchmarks.common import TORCH_DEVICE, TorchMLP, alternate, entry, load_base_data, write_result
from vae_jax.cpu_tuning import ENV_SWITCH, cpu_compiler_options
from vae_jax.evaluate.loglik import (
    DEFAULT_CHUNK_SIZE,
    dataset_log_likelihood,
    summarize_log_likelihood,
)
from vae_jax.model import build_model

_LOG_2PI = math.log(2.0 * math.pi)


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
    m = torch.full((x.shape[0],), -math.inf, device=x.device)
    s = torch.zeros(x.shape[0], device=x.device)
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
                encoder, decoder, x.to(TORCH_DEVICE), num_samples, chunk_size, noise_for_batch(b)
            )
            out.append(values.cpu().numpy()[: batch_size - pad])
    return np.concatenate(out)


def jax_noise(key, latent_dim, batch_size):
    """ε exactly as loglik.importance_log_likelihood draws it through DiagGaussian.sample."""

    def for_batch(b):
        kb = jax.random.fold_in(key, b)

        def noise(i, n):
            eps = jax.random.normal(jax.random.fold_in(kb, i), (n, batch_size, latent_dim))
            return torch.from_numpy(np.array(eps)).to(TORCH_DEVICE)

        return noise

    return for_batch


def torch_noise(seed, latent_dim, batch_size):
    gen = torch.Generator(device=TORCH_DEVICE).manual_seed(seed)
    shape = lambda n: (n, batch_size, latent_dim)
    return lambda b: lambda i, n: torch.randn(shape(n), generator=gen, device=TORCH_DEVICE)


def load_images(num_images: int):
    c, dataset = load_base_data()
    source = f"{dataset.name} test[:{num_images}]: {dataset.description}"
    return c, dataset.test_x[:num_images], source


def measure(args) -> dict:
    """JAX and PyTorch in this process (this process's XLA_FLAGS), plus the chunk sweep."""
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    config, images, source = load_images(args.num_images)
    n, bs, k = len(images), min(args.batch_size, len(images)), args.K
    model = build_model(config.model, images.shape[1:], jax.random.key(0))
    graphdef, params = nnx.split(model)
    encoder, decoder = TorchMLP(model.encoder).eval(), TorchMLP(model.decoder).eval()
    latent_dim = config.model.latent_dim
    key = jax.random.key(1)
    variant = "plain jax.jit" if cpu_compiler_options() is None else "vae_jax.cpu_tuning"
    tag = f"[{variant}]"
    print(f"{tag} {source}", flush=True)
    print(
        f"{tag} K={k}, chunk={args.chunk}, batch={bs}, {threads} threads; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    def run_jax(chunk, num_samples=k):
        return dataset_log_likelihood(
            graphdef,
            params,
            images,
            key,
            num_samples=num_samples,
            chunk_size=chunk,
            batch_size=bs,
        )

    def run_torch(noise_for_batch):
        return torch_dataset_log_likelihood(
            encoder,
            decoder,
            images,
            num_samples=k,
            chunk_size=args.chunk,
            batch_size=bs,
            noise_for_batch=noise_for_batch,
        )

    t0 = time.perf_counter()
    values_jax = run_jax(args.chunk)  # warm-up: compiles
    warmup_jax = time.perf_counter() - t0
    values_torch = run_torch(jax_noise(key, latent_dim, bs))  # the same ε; also a warm-up
    max_abs_diff = float(np.abs(values_jax - values_torch).max())
    print(
        f"{tag} check: max |log p_jax − log p_torch| = {max_abs_diff:.2e} nats on {n} "
        f"images (mean log p(x) {values_jax.mean():.3f} vs {values_torch.mean():.3f})",
        flush=True,
    )

    torch_eps = torch_noise(0, latent_dim, bs)
    (t_jax, times_jax), (t_torch, times_torch) = alternate(
        [lambda: run_jax(args.chunk), lambda: run_torch(torch_eps)], args.repeats
    )
    print(f"{tag} JAX {n / t_jax:.2f} images/s, PyTorch {n / t_torch:.2f} images/s", flush=True)

    chunks = [int(c) for c in args.sweep_chunks.split(",") if c]
    for chunk in chunks:
        run_jax(chunk, args.sweep_K)  # compile
    fns = [lambda c=chunk: run_jax(c, args.sweep_K) for chunk in chunks]
    sweep = {  # images/s at K from the best of the round-robin repeats
        str(c): n * args.sweep_K / k / min(ts)
        for c, (_, ts) in zip(chunks, alternate(fns, args.sweep_repeats), strict=True)
    }
    for c, v in sweep.items():
        print(f"{tag}   sweep: JAX chunk {c:>5}: {v:8.2f} images/s", flush=True)
    return {
        "variant": variant,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "compiler_options": cpu_compiler_options(),
        "images": source,
        "num_images": n,
        "K": k,
        "chunk_size": args.chunk,
        "batch_size": bs,
        "threads": threads,
        "repeats": args.repeats,
        "load_average_1min_at_end": os.getloadavg()[0],
        "jax": {
            "median_s": t_jax,
            "images_per_s": n / t_jax,
            "times_s": times_jax,
            "warmup_s_including_compile": warmup_jax,
        },
        "torch": {"median_s": t_torch, "images_per_s": n / t_torch, "times_s": times_torch},
        "throughput_ratio_jax_over_torch": t_torch / t_jax,
        "check_same_eps": {
            "max_abs_diff_nats": max_abs_diff,
            "jax_summary": summarize_log_likelihood(values_jax, int(np.prod(images.shape[1:]))),
            "torch_mean_log_likelihood_nats": float(values_torch.mean()),
        },
        "jax_chunk_sweep": {
            "K": args.sweep_K,
            "repeats": args.sweep_repeats,
            "images_per_s_at_K_equivalent": sweep,
        },
    }


def print_table(runs):
    first = runs[0]
    print(
        f"\nlog p(x), K={first['K']}, chunk={first['chunk_size']}, {first['num_images']} "
        f"images, batch {first['batch_size']}, {first['threads']} threads"
    )
    rows = []
    for r in runs:
        flags = r["variant"]
        rows.append(
            (f"JAX (jit, lax.scan) [{flags}]", r["jax"], r["throughput_ratio_jax_over_torch"])
        )
        rows.append(("PyTorch (eager), same process", r["torch"], None))
    width = max(len(name) for name, _, _ in rows) + 2
    print(f"{'implementation':<{width}}{'median s':>9}{'images/s':>10}{'JAX/PyTorch':>13}")
    for name, t, ratio in rows:
        ratio_text = f"{ratio:>12.2f}x" if ratio is not None else ""
        print(f"{name:<{width}}{t['median_s']:>9.2f}{t['images_per_s']:>10.2f}{ratio_text}")
    for r in runs:
        flags = r["variant"]
        sweep = r["jax_chunk_sweep"]["images_per_s_at_K_equivalent"]
        if sweep:
            best = max(sweep, key=sweep.get)
            print(
                f"fastest JAX chunk [{flags}]: {best} (images/s by chunk: "
                + ", ".join(f"{c}: {v:.2f}" for c, v in sweep.items())
                + ")"
            )
        diff = r["check_same_eps"]["max_abs_diff_nats"]
        print(f"same-eps check [{flags}]: max |log p_jax - log p_torch| = {diff:.2e} nats")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num_images", type=int, default=100)
    p.add_argument("--K", type=int, default=5000)
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_SIZE)
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sweep_chunks", default="25,50,100,250,500,1000", help="'' skips the sweep")
    p.add_argument("--sweep_K", type=int, default=1000, help="K of the sweep (saves time)")
    p.add_argument("--sweep_repeats", type=int, default=3)
    p.add_argument(
        "--untuned",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also measure plain jax.jit in a child process ({ENV_SWITCH}=0)",
    )
    p.add_argument("--out", default="benchmarks/results/loglik.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    runs = [measure(args)]
    if args.untuned and not args.child:
        with tempfile.TemporaryDirectory() as tmp:
            child_out = os.path.join(tmp, "child.json")
            env = dict(os.environ)
            env[ENV_SWITCH] = "0"
            child_argv = list(argv if argv is not None else sys.argv[1:])
            command = [sys.executable, "-m", "benchmarks.loglik_bench", *child_argv]
            subprocess.run([*command, "--child", "--out", child_out], env=env, check=True)
            with open(child_out) as f:
                runs += json.load(f)["runs"]
    if not args.child:
        print_table(runs)

    result = {
        "benchmark": "importance-sampled log p(x), MLP VAE 784-512-256-20 bernoulli",
        "weights": "random init, seed 0 (throughput does not depend on training)",
        "ratio": "throughput JAX / PyTorch, each pair measured in one process, interleaved",
        "cpu": platform.processor() or platform.machine(),
        "versions": {"jax": jax.__version__, "torch": torch.__version__},
        "runs": runs,
        "entries": [
            entry(
                f"loglik_K{r['K']}_{r['variant'].replace(' ', '_')}",
                r["jax"]["images_per_s"],
                r["torch"]["images_per_s"],
                "images/s",
                reference_name=f"PyTorch {torch.__version__} eager",
                chunk_size=r["chunk_size"],
            )
            for r in runs
        ],
    }
    return write_result(args.out, result)


if __name__ == "__main__":
    main()
