"""Matplotlib figures of a run: the latent scatter (AE vs VAE) and the training curves.

- `latent_scatter`: test-set posterior means coloured by class, one panel per model. Placed
  side by side, an autoencoder's codes form separated, irregularly scaled clusters with gaps
  that decode to nothing, while the KL term of the ELBO (Kingma & Welling 2013, Eq. 10)
  packs a VAE's codes into one continuous region around the N(0, I) prior. For D > 2 each
  panel is the projection on its own first two principal components (PCA by SVD of the
  centred codes; Pearson 1901), with the explained variance on the axis labels.
- `training_curves`: ELBO, log p(x|z) and KL against step from a run's metrics.jsonl, and
  the KL of each latent dimension when the records carry `kl_per_dim` (where posterior
  collapse shows as dimensions whose KL falls to 0; Burda et al. 2015, §5.2 "active units").

Drawn with the object-oriented API on an Agg canvas: no pyplot state, no window, and no
change to the process-wide matplotlib backend. Nothing here trains.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vae_jax.distributed import is_writer
from vae_jax.evaluate.active_units import dims_by_kl
from vae_jax.figures.latent import encode_means

__all__ = ["DPI", "PANEL_SIZE", "encode_means", "latent_scatter", "pca_2d", "training_curves"]

DPI = 100
PANEL_SIZE = (5.0, 4.0)  # inches per panel; a figure of k panels is k·5 × 4 inches
_UNLABELLED = (0.6, 0.6, 0.6, 1.0)
_LEGEND_DIMS = 6  # the per-dimension KL panel names this many of the largest dimensions


def _new_figure(num_panels: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(PANEL_SIZE[0] * num_panels, PANEL_SIZE[1]), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, num_panels, squeeze=False)[0]


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project codes [N, D] on their first two principal components.

    Returns (projection [N, 2], fraction of the total variance along each component [2]).
    Signs are fixed so each component's largest-magnitude loading is positive, which makes
    the picture a deterministic function of the codes. D = 1 gives a zero second column.
    """
    x = np.asarray(codes, np.float64)
    x = x - x.mean(axis=0, keepdims=True)  # [N, D]
    _, s, vt = np.linalg.svd(x, full_matrices=False)  # vt [min(N, D), D]
    vt = vt * np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])[:, None]
    k = min(2, len(vt))
    proj = np.zeros((len(x), 2))
    proj[:, :k] = x @ vt[:k].T
    total = np.sum(s**2)
    ratio = np.zeros(2)
    ratio[:k] = s[:k] ** 2 / total if total > 0 else 0.0
    return proj, ratio


def _class_colours(classes: np.ndarray) -> dict[int, tuple]:
    known = [c for c in classes if c >= 0]
    cmap = matplotlib.colormaps["tab10" if len(known) <= 10 else "tab20"]
    colours = {int(c): cmap(i % cmap.N) for i, c in enumerate(known)}
    colours[-1] = _UNLABELLED
    return colours


def latent_scatter(
    path: str,
    encodings: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str] | None = None,
) -> str:
    """Side-by-side scatter of codes [N, D] coloured by labels [N] (−1 = unlabelled, grey),
    one panel per entry of `encodings`, e.g. {"autoencoder": (codes, y), "VAE": (codes, y)}.

    D = 2: the raw axes z₁, z₂. D > 2: the panel's own PCA (`pca_2d`). D = 1: z₁ against the
    label. Codes come from `encode_means`. Points are drawn in a fixed shuffled order so no
    class hides the others. Returns `path`.
    """
    if not encodings:
        raise ValueError("encodings is empty: pass {model name: (codes [N, D], labels [N])}")
    classes = np.unique(np.concatenate([np.asarray(y).ravel() for _, y in encodings.values()]))
    colours = _class_colours(classes)
    fig, axes = _new_figure(len(encodings))
    for ax, (name, (codes, labels)) in zip(axes, encodings.items(), strict=True):
        codes = np.asarray(codes, np.float64).reshape(len(codes), -1)  # [N, D]
        labels = np.asarray(labels).astype(np.int64).ravel()  # [N]
        n, d = codes.shape
        if d == 2:
            xy, axis_labels = codes, ("$z_1$", "$z_2$")
        elif d == 1:
            xy = np.stack([codes[:, 0], labels.astype(np.float64)], axis=1)
            axis_labels = ("$z_1$", "class")
        else:
            xy, ratio = pca_2d(codes)
            axis_labels = tuple(f"PC{i + 1} ({r:.0%} of variance)" for i, r in enumerate(ratio))
        order = np.random.default_rng(0).permutation(n)
        ax.scatter(
            xy[order, 0],
            xy[order, 1],
            c=[colours.get(int(c), _UNLABELLED) for c in labels[order]],
            s=4,
            alpha=0.7,
            linewidths=0,
            rasterized=True,
        )
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        projection = "" if d <= 2 else ", PCA"
        ax.set_title(f"{name} (D = {d}{projection})")
        if d >= 2:
            ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)

    def name_of(c: int) -> str:
        if c < 0:
            return "unlabelled"
        return class_names[c] if class_names is not None and c < len(class_names) else str(c)

    handles = [
        Line2D([], [], ls="", marker="o", markersize=6, color=colours[int(c)], label=name_of(c))
        for c in classes
    ]
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    if is_writer():  # process 0 of a multi-host run
        fig.savefig(path)
    return path


def _read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    if not records:
        raise ValueError(f"{path} holds no metric records")
    return records


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r[key]) for r in records if key in r and "step" in r]
    steps = np.array([s for s, _ in rows], np.float64)
    return steps, np.array([v for _, v in rows], np.float64)


def _marker(steps: np.ndarray) -> str:
    """Dots on the curve when the run logged few points, so sparse logging stays visible."""
    return "." if len(steps) <= 50 else ""


def training_curves(path: str, metrics_jsonl_path: str) -> str:
    """Curves from a run's metrics.jsonl (records {"step", "elbo", "log_px", "kl", ...}).

    Panels: ELBO and log p(x|z) together (nats per example), with the validation ELBO
    (`val_elbo`) where it was logged; KL on its own axis (an order of
    magnitude smaller, it would be flat beside them); and, only if some records carry
    "kl_per_dim" (a list of D floats), one line per latent dimension, coloured by the final
    KL and with the largest few named in the legend. Records lacking a key are skipped for
    that curve. Returns `path`.
    """
    records = _read_jsonl(metrics_jsonl_path)
    per_dim_records = [r for r in records if "kl_per_dim" in r and "step" in r]
    fig, axes = _new_figure(3 if per_dim_records else 2)

    for key, label in (("elbo", "ELBO"), ("log_px", r"$\log p(x\,|\,z)$")):
        steps, values = _series(records, key)
        if len(steps):
            axes[0].plot(steps, values, marker=_marker(steps), label=label)
    steps, values = _series(records, "val_elbo")
    if len(steps):
        axes[0].plot(steps, values, "o--", color="C3", label="ELBO, validation split")
    axes[0].set_title("ELBO and reconstruction")
    axes[0].set_ylabel("nats per example")
    axes[0].legend()

    steps, values = _series(records, "kl")
    axes[1].plot(
        steps, values, color="C2", marker=_marker(steps), label=r"$D_{KL}(q(z|x)\,\|\,p(z))$"
    )
    axes[1].set_title("KL")
    axes[1].set_ylabel("nats per example")
    axes[1].legend()

    if per_dim_records:
        steps = np.array([r["step"] for r in per_dim_records], np.float64)  # [R]
        kl = np.array([r["kl_per_dim"] for r in per_dim_records], np.float64)  # [R, D]
        final = kl[-1]  # [D]
        rank = np.argsort(np.argsort(final, kind="stable"), kind="stable")  # 0 = smallest
        cmap = matplotlib.colormaps["viridis"]
        order = dims_by_kl(final)
        named = set(order[:_LEGEND_DIMS].tolist())
        for j in order:
            colour = cmap(rank[j] / max(kl.shape[1] - 1, 1))
            label = f"$z_{{{j}}}$ ({final[j]:.2f})" if j in named else None
            axes[2].plot(steps, kl[:, j], color=colour, lw=1.2, label=label)
        axes[2].set_title(f"KL per dimension (D = {kl.shape[1]})")
        axes[2].set_ylabel("nats per example")
        axes[2].legend(title="final KL", fontsize="small")

    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if is_writer():  # process 0 of a multi-host run
        fig.savefig(path)
    return path
