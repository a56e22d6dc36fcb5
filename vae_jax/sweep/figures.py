"""The sweep's figures, from its summary rows (vae_jax/sweep/summary.py):

- `rate_distortion`: the rate–distortion plane of Alemi et al. 2018 ("Fixing a Broken
  ELBO"): distortion D = −E_q log p(x|z) against rate R = KL(q(z|x) ‖ p(z)), one point per
  member, labelled with its swept values, over the lines of constant ELBO = −(D + R). β
  trades one for the other: β > 1 moves a model up the distortion axis towards R = 0
  (posterior collapse), β < 1 buys a lower distortion with a higher rate.
- `kl_heatmap`: the KL of each latent dimension to N(0, 1), ranked within each member
  (rows), against the members (columns), log-coloured, so the β at which dimensions
  collapse shows. (The table's active units use the covariance test of Burda et al.)
- `disentanglement_vs_swept`: each disentanglement metric's headline value against the
  swept value (β), one line per metric (Higgins et al. 2017, Fig. 6; Locatello et al. 2019).
- `reconstruction_vs_disentanglement`: the trade-off β-VAE makes (Higgins et al. 2017;
  Burgess et al. 2018): reconstruction log-likelihood E_q log p(x|z) against each metric,
  one point per member.

Agg canvas, no pyplot state (as vae_jax/figures/plots.py).
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

DPI = 100


def _label(row: dict, swept: list[str]) -> str:
    def text(v):
        return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    return ", ".join(f"{f.rsplit('.', 1)[-1]}={text(row[f])}" for f in swept)


def _measured(rows: list[dict], *keys) -> list[dict]:
    return [r for r in rows if not r.get("failed") and all(r.get(k) is not None for k in keys)]


def rate_distortion(path: str, rows: list[dict], swept: list[str]) -> str | None:
    """The (R, D) plane; None (nothing written) when no member has both numbers."""
    rows = _measured(rows, "test_kl_nats", "test_log_px_nats")
    if not rows:
        return None
    rate = np.array([r["test_kl_nats"] for r in rows])
    distortion = -np.array([r["test_log_px_nats"] for r in rows])
    fig = Figure(figsize=(6.5, 5.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    r_max = max(rate.max() * 1.15, 1.0)
    d_lo, d_hi = distortion.min(), distortion.max()
    pad = max(0.1 * (d_hi - d_lo), 1.0)
    r_line = np.linspace(0, r_max, 50)
    for elbo in np.unique(np.round(-(rate + distortion), 0)):  # one line per member
        ax.plot(r_line, -elbo - r_line, color="0.85", lw=0.8, zorder=0)
    if len(swept) == 1:  # one axis: join the points in its order
        ax.plot(rate, distortion, "-", color="0.6", lw=1, zorder=1)
    ax.scatter(rate, distortion, s=30, zorder=2)
    for r, d, row in zip(rate, distortion, rows, strict=True):
        ax.annotate(_label(row, swept), (r, d), textcoords="offset points", xytext=(5, 4))
    ax.set_xlim(0, r_max)
    ax.set_ylim(d_lo - pad, d_hi + pad)
    ax.set_xlabel("rate R = KL(q(z|x) ‖ p(z)), nats")
    ax.set_ylabel("distortion D = −E_q log p(x|z), nats")
    ax.set_title("rate–distortion (grey: lines of equal ELBO = −(D + R))")
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def kl_heatmap(path: str, rows: list[dict], swept: list[str]) -> str | None:
    """KL per latent dimension × member; None when no member measured it."""
    rows = _measured(rows, "kl_per_dim")
    if not rows or len({len(r["kl_per_dim"]) for r in rows}) != 1:
        return None  # members with different latent sizes: no common rows
    # Each member's dimensions sorted on their own (an index means nothing across seeds).
    kl = -np.sort(-np.array([r["kl_per_dim"] for r in rows]), axis=1).T  # [rank, members]
    kl = np.maximum(kl, 1e-4)
    fig = Figure(figsize=(1.0 + 0.9 * len(rows), 1.5 + 0.22 * len(kl)), dpi=DPI)
    fig.set_layout_engine("constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(kl, aspect="auto", cmap="viridis", norm=LogNorm(1e-4, max(kl.max(), 1e-3)))
    ax.set_xticks(range(len(rows)), [_label(r, swept) for r in rows], rotation=45, ha="right")
    ax.set_yticks(range(len(kl)), [str(d + 1) for d in range(len(kl))])
    ax.set_ylabel("dimension, ranked by its KL within each member")
    ax.set_title("KL(q(z_d|x) ‖ N(0, 1)) per dimension, nats")
    fig.colorbar(image, ax=ax)
    fig.savefig(path)
    return path


METRIC_LABELS = {
    "beta_vae": "BetaVAE score",
    "factor_vae": "FactorVAE score",
    "mig": "MIG",
    "dci": "DCI disentanglement",
    "sap": "SAP",
}


def disentanglement_vs_swept(path: str, rows: list[dict], swept: list[str]) -> str | None:
    """Each metric against the (single, numeric) swept value; None when not measured."""
    rows = _measured(rows, "mig")
    if not rows or len(swept) != 1:
        return None
    x = [r[swept[0]] for r in rows]
    if not all(isinstance(v, (int, float)) for v in x):
        return None
    order = np.argsort(x)
    fig = Figure(figsize=(6.5, 4.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for key, label in METRIC_LABELS.items():
        if all(r.get(key) is not None for r in rows):
            ax.plot(np.asarray(x)[order], [rows[i][key] for i in order], "o-", label=label)
    if min(x) > 0 and max(x) / min(x) > 8:
        ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(x), [f"{v:g}" for v in sorted(x)])
    ax.set_xlabel(swept[0])
    ax.set_ylabel("score (1 = ideal; see each metric's protocol)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"disentanglement of μ(x) against {swept[0].rsplit('.', 1)[-1]}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def reconstruction_vs_disentanglement(path: str, rows: list[dict], swept: list[str]) -> str | None:
    """E_q log p(x|z) against each metric (one panel per metric); None when not measured."""
    rows = _measured(rows, "mig", "test_log_px_nats")
    if not rows:
        return None
    keys = [k for k in METRIC_LABELS if all(r.get(k) is not None for r in rows)]
    fig = Figure(figsize=(3.2 * len(keys), 3.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(keys), sharey=True))
    recon = [r["test_log_px_nats"] for r in rows]
    for ax, key in zip(axes, keys, strict=True):
        ax.scatter([r[key] for r in rows], recon, s=25)
        for r, y in zip(rows, recon, strict=True):
            ax.annotate(
                _label(r, swept), (r[key], y), textcoords="offset points", xytext=(4, 3), fontsize=7
            )
        ax.set_xlabel(METRIC_LABELS[key])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("reconstruction E_q log p(x|z), nats")
    fig.suptitle("reconstruction against disentanglement, one point per member")
    fig.savefig(path)
    return path
