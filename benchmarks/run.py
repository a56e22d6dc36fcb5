"""Run the benchmarks: `python -m benchmarks.run [NAME ...]` (default: all).

Each benchmark measures vae_jax against a reference implementation in the same process and
writes JSON under benchmarks/results/. Adding one is a module with `main(argv)` plus a line
in BENCHMARKS.
"""

from __future__ import annotations

import sys

from benchmarks import loglik_bench, train_bench

BENCHMARKS = {
    "loglik": loglik_bench.main,  # importance-sampled log p(x), K = 5000, vs PyTorch eager
    "train": train_bench.main,  # training examples/s of the default MLP VAE, vs PyTorch eager
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    for name in names:
        print(f"=== benchmark {name} ===", flush=True)
        BENCHMARKS[name]([])


if __name__ == "__main__":
    main(sys.argv[1:])
