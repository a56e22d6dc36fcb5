"""Mean ± standard deviation of a run's headline numbers over several seeds.

    python -m vae_jax.aggregate runs/seeds/seed0 runs/seeds/seed1 runs/seeds/seed2

Reads each workdir's eval.json (written by `python -m vae_jax.main` or `vae_jax.evaluate`)
and prints a markdown table: one row per number, the value of each run, and mean ± std
(sample standard deviation, ddof = 1). Also writes it, with the per-run values, as JSON
to `--out` when given. A paper's table reports the mean ± std over seeds; a single seed's
number moves by about that std when anything but the hardware, the thread count and the
software versions changes (see README, "Reproducibility").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from vae_jax.files import write_json_atomic

# (label, path into eval.json, digits)
ROWS = (
    ("test ELBO (nats)", ("elbo", "test_elbo_nats"), 2),
    ("reconstruction E_q log p(x|z) (nats)", ("elbo", "test_log_px_nats"), 2),
    ("KL (nats)", ("elbo", "test_kl_nats"), 2),
    ("bits/dim", ("elbo", "test_bits_per_dim"), 4),
    ("log p(x), importance sampled (nats)", ("log_likelihood", "log_likelihood_nats"), 2),
    ("validation ELBO, last step (nats)", ("validation", "final_val_elbo_nats"), 2),
    ("active units", ("collapse", "num_active"), 1),
    ("I(x;z) lower bound (nats)", ("collapse", "mutual_info", "lower_nats"), 2),
    ("Fréchet distance, samples", ("sample_quality", "fd_samples"), 2),
    ("Fréchet distance, reconstructions", ("sample_quality", "fd_reconstructions"), 2),
    ("Fréchet distance, real-vs-real floor", ("sample_quality", "fd_reference_test_vs_val"), 2),
    ("autoencoder baseline log p(x|z=μ) (nats)", ("autoencoder_baseline", "test_elbo_nats"), 2),
)


def _get(results: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(results, dict) or key not in results:
            return None
        results = results[key]
    return results


# Settings a number depends on: runs that differ in them are not averaged silently.
SETTINGS = {
    "log p(x), importance sampled (nats)": (
        ("log_likelihood", "num_importance_samples"),
        ("log_likelihood", "num_examples"),
    ),
    "test ELBO (nats)": (("elbo", "num_test_examples"),),
}


def aggregate(workdirs: list[str]) -> dict:
    """{label: {"values": [one per run, None where missing], "mean", "std", "num_runs"}};
    mean and std are over the runs that have the number (std None for one run)."""
    runs = []
    for w in workdirs:
        path = os.path.join(w, "eval.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: train or evaluate {w} first")
        with open(path) as f:
            runs.append(json.load(f))
    table = {}
    for label, path, digits in ROWS:
        per_run = [_get(r, path) for r in runs]  # None where a run lacks the number
        values = [float(v) for v in per_run if v is not None]
        if not values:
            continue
        mean = sum(values) / len(values)
        std = (
            math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            if len(values) > 1
            else None
        )
        settings = {
            path[-1]: sorted({_get(r, path) for r in runs if _get(r, path) is not None})
            for path in SETTINGS.get(label, ())
        }
        table[label] = {
            "values": [None if v is None else float(v) for v in per_run],
            "mean": mean,
            "std": std,
            "num_runs": len(values),
            "digits": digits,
            "mixed_settings": {k: v for k, v in settings.items() if len(v) > 1},
        }
    return table


def markdown(table: dict, workdirs: list[str]) -> str:
    names = [os.path.basename(os.path.normpath(w)) for w in workdirs]
    lines = [
        "| number | " + " | ".join(names) + " | mean ± std |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for label, row in table.items():
        d = row["digits"]
        cells = ["—" if v is None else f"{v:.{d}f}" for v in row["values"]]
        stat = f"{row['mean']:.{d}f}" + ("" if row["std"] is None else f" ± {row['std']:.{d}f}")
        if row["num_runs"] < len(row["values"]):
            stat += f" (of {row['num_runs']})"
        for name, values in row["mixed_settings"].items():
            stat += f" ⚠ runs differ in {name}: {values}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {stat} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+", help="run folders holding eval.json")
    parser.add_argument("--out", help="also write the table as JSON here")
    args = parser.parse_args(argv)
    try:
        table = aggregate(args.workdirs)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(markdown(table, args.workdirs))
    if args.out:
        write_json_atomic(args.out, {"workdirs": args.workdirs, "table": table})


if __name__ == "__main__":
    main()
