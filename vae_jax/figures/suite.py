"""Every figure of a trained run, each with a caption that says what was encoded (binary or
grey) and at what temperature; vae_jax/assess.py puts them into the report.

The figures encode the inputs the test ELBO uses (the fixed binary draw of binarized data);
grey originals appear only as a labelled "original" row. Nothing here trains.
"""

from __future__ import annotations

import os

import numpy as np

from vae_jax.data import CLASS_NAMES
from vae_jax.evaluate.active_units import dims_by_kl, layer_names
from vae_jax.evaluate.suite import encoded_description, eval_key
from vae_jax.figures import latent, plots, samples
from vae_jax.model import merge_model


def write_core_figures(config, workdir, dataset, graphdef, params):
    """reconstructions.png and samples.png (every run); returns [(path, caption)]."""
    path = lambda name: os.path.join(workdir, name)
    n = max(config.eval.num_figure_examples, 1)
    grey = dataset.test_raw if dataset.binarization != "none" else None
    samples.reconstructions(
        path("reconstructions.png"), graphdef, params, dataset.test_x, ncols=n, display_u8=grey
    )
    t = config.eval.sample_temperature
    samples.samples(
        path("samples.png"), graphdef, params, eval_key(config, "figures"), num=64, temperature=t
    )
    first = "grey originals (not seen by the encoder); then " if grey is not None else ""
    drawn = merge_model(graphdef, params).prior.describe_temperature(t)
    return [
        (
            path("reconstructions.png"),
            f"Rows: {first}the encoded test inputs ({encoded_description(dataset)}); their "
            "reconstructions E[x | z = μ(x)].",
        ),
        (
            path("samples.png"),
            f"E[x | z] for {drawn}: samples from the prior at temperature T = {t:g} "
            "(T = 1 is the prior itself); decoder means, not binary draws.",
        ),
    ]


def write_figures(
    config, workdir, dataset, graphdef, params, collapse, baseline=None, factors=None
):
    """Write every figure; returns [(path, caption)] in report order. `collapse` is
    diagnose_collapse's report (KL per dimension and the active-unit mask); `factors`, on
    data with known factors, the disentanglement result's `latent_factors` (the factor each
    dimension shares most information with), which label the traversal rows."""
    figs = write_core_figures(config, workdir, dataset, graphdef, params)
    path = lambda name: os.path.join(workdir, name)
    encoded = dataset.test_x  # what the encoder sees: the test ELBO's inputs
    if len(layer_names(graphdef, params, encoded[:1])) > 1:
        # The latent walks below move and decode one flat code; a latent made of several
        # layers needs figures of its own, so only the training curves follow.
        return figs + _training_curves(workdir)
    what = encoded_description(dataset)
    grey = dataset.test_raw if dataset.binarization != "none" else None
    kl_per_dim = np.asarray(collapse["kl_per_dim"])
    active = np.zeros(len(kl_per_dim), bool)
    active[[d for d in range(len(kl_per_dim)) if d not in collapse["collapsed_dims"]]] = True
    pairs = [(i, i + 1) for i in range(0, min(16, len(encoded)) - 1, 2)]  # ≥ 1: N ≥ 2
    for method, p in latent.interpolation_figures(
        workdir, graphdef, params, encoded, pairs
    ).items():
        figs.append(
            (
                p,
                f"{method.capitalize()} interpolation between the posterior means μ(x) of pairs "
                f"of test inputs; each row is framed by the two encoded inputs ({what}), and the "
                "decoded ends are their reconstructions.",
            )
        )
    captures = None if factors is None else {f["dim"]: f for f in factors}
    _, dims = latent.traversals(
        path("traversals.png"), graphdef, params, encoded[0], kl_per_dim, active, captures
    )
    inactive = collapse["collapsed_dims"]
    if active.any():
        rows = f"one row per active dimension ({len(dims)}), largest KL first"
        rest = (
            f"Not shown: {len(inactive)} inactive dimensions ({', '.join(map(str, inactive))}),"
            " whose rows would be constant."
            if inactive
            else "Every dimension is active."
        )
    else:
        rows = f"no dimension is active, so the {len(dims)} with the largest KL are shown"
        rest = "All are inactive (posterior collapse); their rows are near constant."
    figs.append(
        (
            path("traversals.png"),
            f"Latent traversals around μ(x) of the first test input ({what}): {rows}, each "
            f"moved over μ_j ± 3 with the others fixed. {rest}"
            + (
                ""
                if captures is None
                else " Each row names the factor the dimension shares most information with "
                "and I(z_j; factor)/H(factor) (20-bin histogram of μ_j, on MIG's points)."
            ),
        )
    )
    latent.manifold_2d(path("manifold.png"), graphdef, params, n=20, kl_per_dim=kl_per_dim)
    d0, d1 = dims_by_kl(kl_per_dim)[:2]
    figs.append(
        (
            path("manifold.png"),
            f"The learned manifold (Kingma & Welling 2013, Fig. 4): E[x | z] on a 20×20 grid of "
            f"standard-normal quantiles z = Φ⁻¹(u) over the two highest-KL dimensions z{d0} "
            f"(across) and z{d1} (up); the other dimensions are held at 0."
            + (
                ""
                if config.model.prior == "standard_normal"
                else f" The model's prior is {config.model.prior}, not N(0, I): this grid of "
                "N(0, 1) quantiles is a fixed reference grid, not the prior's quantiles, "
                "and 0 is not the prior's mean."
            ),
        )
    )
    labels = dataset.test_y
    src, dst = config.eval.arithmetic_source, config.eval.arithmetic_target
    names = CLASS_NAMES.get(dataset.name)
    name = lambda c: f"{c} ({names[c]})" if names is not None and c < len(names) else str(c)
    if (labels == src).any() and (labels == dst).any():
        latent.latent_arithmetic(
            path("latent_arithmetic.png"),
            graphdef,
            params,
            encoded,
            labels,
            source_class=src,
            target_class=dst,
            display_u8=grey,
        )
        figs.append(
            (
                path("latent_arithmetic.png"),
                f"Editing by latent arithmetic: test inputs of class {name(src)}, encoded "
                f"({what}), reconstructed, then decoded at μ(x) + v with v = mean μ of class "
                f"{name(dst)} − mean μ of class {name(src)} over the test set."
                + (" The first row shows the grey originals." if grey is not None else ""),
            )
        )
    if (labels >= 0).any():
        encodings = {}
        if baseline is not None:
            encodings["autoencoder"] = (latent.encode_means(*baseline, encoded), labels)
        encodings["VAE"] = (latent.encode_means(graphdef, params, encoded), labels)
        plots.latent_scatter(path("latent_scatter.png"), encodings, class_names=names)
        figs.append(
            (
                path("latent_scatter.png"),
                f"Codes μ(x) of the {len(encoded)} test inputs ({what}), coloured by label"
                + (", for the plain autoencoder and the VAE" if baseline is not None else "")
                + "; for more than two dimensions each panel is its own 2-D PCA projection.",
            )
        )
    return figs + _training_curves(workdir)


def _training_curves(workdir: str) -> list[tuple[str, str]]:
    metrics = os.path.join(workdir, "metrics.jsonl")
    if not (os.path.exists(metrics) and os.path.getsize(metrics)):
        return []
    png = os.path.join(workdir, "training_curves.png")
    plots.training_curves(png, metrics)
    caption = (
        "Training curves: ELBO and log p(x|z) on the training batches (averaged over each "
        "logging interval) and on the validation split; the KL term; and the KL of each "
        "latent dimension."
    )
    return [(png, caption)]
