"""Run the benchmarks: `python -m benchmarks.run [NAME ...]` (default: all).

Each benchmark measures vae_jax against a reference implementation in the same process and
writes JSON under benchmarks/results/. Adding one is a module with `main(argv)` plus a line
in BENCHMARKS.
"""

from __future__ import annotations

import sys

from benchmarks import loglik_bench, sweep_bench, train_bench
from benchmarks.common import write_result

BENCHMARKS = {
    "loglik": loglik_bench.main,  # importance-sampled log p(x), K = 5000, vs PyTorch eager
    "train": train_bench.main,  # training examples/s of the default MLP VAE, vs PyTorch eager
    "sweep": sweep_bench.main,  # 8 members vmapped in one program, vs run one after another
}


BENCH_JSON = "benchmarks/results/bench.json"


def main(argv: list[str]) -> None:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    entries = []
    for name in names:
        print(f"=== benchmark {name} ===", flush=True)
        entries += BENCHMARKS[name]([]).get("entries", [])
    # One row per case: name, ours, reference, ratio, unit, device (and the case's extras).
    write_result(BENCH_JSON, {"entries": entries})
    for e in entries:
        ratio = "" if e["ratio"] is None else f"  ({e['ratio']:.2f}× the reference)"
        print(f"{e['name']}: {e['ours']:,.1f} {e['unit']} on {e['device']}{ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])
