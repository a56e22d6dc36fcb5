"""Evaluate a trained run: numbers, collapse verdict, figures, eval.json and report.html.

Used at the end of training (`finalize_run`) and by `python -m vae_jax.evaluate`. Every
random draw comes from keys folded out of `config.seed`, so the numbers are reproducible.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from vae_jax.evaluate.elbo import dataset_elbo
from vae_jax.evaluate.loglik import dataset_log_likelihood, summarize_log_likelihood

# Independent key streams for evaluation, folded out of the run's seed. The feature
# classifier uses a fixed key instead, so every run of a data set shares one cached classifier.
_ELBO, _LOGLIK, _COLLAPSE, _FIGURES, _QUALITY = range(10**6, 10**6 + 5)


def _key(config, stream: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(config.seed), stream)


def _limit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if n else x


def test_elbo_summary(config, dataset, graphdef, params) -> dict:
    """ELBO, log p(x|z) and KL on the test split, in nats per example, plus bits/dim."""
    test_x = _limit(dataset.test_x, config.eval.max_examples)
    deterministic = config.objective.name == "autoencoder"
    terms = dataset_elbo(
        graphdef,
        params,
        test_x,
        _key(config, _ELBO),
        num_samples=config.eval.num_samples,
        batch_size=min(config.eval.batch_size, len(test_x)),
        deterministic=deterministic,
    )
    dims = int(np.prod(dataset.shape))
    elbo = float(terms["elbo"].mean())
    summary = {
        "test_elbo_nats": elbo,
        "test_elbo_stderr": float(terms["elbo"].std(ddof=1) / np.sqrt(len(test_x))),
        "test_log_px_nats": float(terms["log_px"].mean()),
        "test_kl_nats": float(terms["kl"].mean()),
        "test_bits_per_dim": -elbo / (dims * np.log(2.0)),
        "num_test_examples": len(test_x),
        "elbo_samples": config.eval.num_samples,
        "objective": config.objective.name,
        "beta": float(config.hyper.beta),
        "likelihood": config.model.likelihood,
        "data": dataset.name,
        "binarization": dataset.binarization,
        "data_description": dataset.description,
        "bits_per_dim_note": (
            f"negative test ELBO / (D ln 2), D = {dims}. For binary data: bits/dim of a discrete "
            "model. For the gaussian likelihood: a density on [0,1]^D, not comparable with "
            "8-bit bits/dim."
        ),
    }
    if deterministic:
        summary["note"] = "autoencoder: no KL term; test_elbo_nats is log p(x|z=μ(x)), not a bound"
    return summary


def log_likelihood_summary(config, dataset, graphdef, params, num_samples: int) -> dict:
    """Importance-sampled log p(x) with K = num_samples (Burda et al. 2015)."""
    test_x = _limit(dataset.test_x, config.eval.loglik_examples)
    chunk = min(config.eval.loglik_chunk, num_samples)
    values = dataset_log_likelihood(
        graphdef,
        params,
        test_x,
        _key(config, _LOGLIK),
        num_samples=num_samples,
        chunk_size=chunk,  # a remainder (K not a multiple) is one more, smaller chunk
        batch_size=min(config.eval.loglik_batch_size, len(test_x)),
    )
    elbo = dataset_elbo(
        graphdef,
        params,
        test_x,
        _key(config, _ELBO),
        num_samples=config.eval.num_samples,
        batch_size=min(config.eval.batch_size, len(test_x)),
    )["elbo"]
    return {
        **summarize_log_likelihood(values, int(np.prod(dataset.shape))),
        "num_importance_samples": num_samples,
        "elbo_same_examples_nats": float(elbo.mean()),  # the bound it tightens, same examples
    }


def sample_quality_summary(config, dataset, graphdef, params) -> dict:
    """Fréchet distance in a small classifier's feature space; skipped (with the reason)
    when the data set has no labels to train the classifier on."""
    if not config.eval.sample_quality:
        return {"skipped": "eval.sample_quality=False"}
    from vae_jax.evaluate import feature_classifier, frechet

    # Everything here uses the images before binarization, so that classifier training, its
    # accuracy, the real-vs-real floor and the real side of each distance match; the model
    # side is E[x|z], which for binarized data estimates those grey images.
    if (dataset.train_y < 0).all():
        return {"skipped": f"{dataset.name} has no labels to train the feature classifier"}
    cache_dir = config.eval.classifier_dir or os.path.expanduser("~/.cache/vae_jax")
    steps = config.eval.classifier_steps  # in the name: runlocal's short one is kept apart
    cache = os.path.join(cache_dir, f"classifier_{dataset.name}_{steps}steps.npz")
    classifier = feature_classifier.get_classifier(
        dataset.train_raw,
        dataset.train_y,
        cache_path=cache,
        key=jax.random.key(0),
        num_steps=config.eval.classifier_steps,
        dataset_name=dataset.name,
        test_images_u8=dataset.test_raw,
        test_labels=dataset.test_y,
    )
    n = config.eval.fd_num_examples
    return frechet.sample_quality(
        graphdef,
        params,
        classifier,
        _limit(dataset.test_raw, n),
        _key(config, _QUALITY),
        reference_images_u8=_limit(dataset.train_raw, n),
    )


def write_core_figures(config, workdir, dataset, graphdef, params):
    """reconstructions.png and samples.png (every run); returns [(path, caption)]."""
    from vae_jax.figures import samples

    path = lambda name: os.path.join(workdir, name)
    images = dataset.test_raw  # the grey images: readable, and E[binarized x] = x/255
    n = max(config.eval.num_figure_examples, 1)
    samples.reconstructions(path("reconstructions.png"), graphdef, params, images, ncols=n)
    t = config.eval.sample_temperature
    samples.samples(
        path("samples.png"), graphdef, params, _key(config, _FIGURES), num=64, temperature=t
    )
    return [
        (path("reconstructions.png"), "test inputs (top) and E[x | z = μ(x)] (bottom)"),
        (path("samples.png"), f"E[x|z] for z ~ N(0, {t}²I) (the prior at T = 1)"),
    ]


def write_figures(config, workdir, dataset, graphdef, params, kl_per_dim, baseline=None):
    """Write every figure; returns [(path, caption)] in report order."""
    from vae_jax.figures import latent, plots

    figs = write_core_figures(config, workdir, dataset, graphdef, params)
    path = lambda name: os.path.join(workdir, name)
    images = dataset.test_raw
    pairs = [(i, i + 1) for i in range(0, 16, 2)]
    for method, p in latent.interpolation_figures(workdir, graphdef, params, images, pairs).items():
        figs.append((p, f"{method} interpolation between posterior means of test pairs"))
    latent.traversals(path("traversals.png"), graphdef, params, images[0], kl_per_dim)
    figs.append((path("traversals.png"), "latent traversals, one row per dimension, by KL"))
    latent.manifold_2d(path("manifold.png"), graphdef, params, n=20, kl_per_dim=kl_per_dim)
    figs.append((path("manifold.png"), "decoded inverse-CDF grid over the two highest-KL dims"))
    labels = dataset.test_y
    src, dst = config.eval.arithmetic_source, config.eval.arithmetic_target
    if (labels == src).any() and (labels == dst).any():
        latent.latent_arithmetic(
            path("latent_arithmetic.png"),
            graphdef,
            params,
            images,
            labels,
            source_class=src,
            target_class=dst,
        )
        figs.append(
            (
                path("latent_arithmetic.png"),
                f"class {src} inputs, reconstructions, and + (mean code {dst} − mean code "
                f"{src}) decoded",
            )
        )
    if (labels >= 0).any():
        encodings = {}
        if baseline is not None:
            encodings["autoencoder"] = (latent.encode_means(*baseline, images), labels)
        encodings["VAE"] = (latent.encode_means(graphdef, params, images), labels)
        names = latent.FASHION_MNIST_CLASSES if dataset.name == "fashion_mnist" else None
        plots.latent_scatter(path("latent_scatter.png"), encodings, class_names=names)
        figs.append((path("latent_scatter.png"), "test encodings coloured by label"))
    metrics = path("metrics.jsonl")
    if os.path.exists(metrics) and os.path.getsize(metrics):
        plots.training_curves(path("training_curves.png"), metrics)
        figs.append((path("training_curves.png"), "ELBO, log p(x|z), KL (and KL per dim) by step"))
    return figs


def evaluate_run(
    config,
    workdir,
    dataset,
    graphdef,
    params,
    *,
    baseline=None,
    num_importance_samples: int | None = None,
) -> dict:
    """All numbers and figures for a trained model; writes eval.json and report.html."""
    from vae_jax import report
    from vae_jax.evaluate.collapse import diagnose_collapse

    results = {"elbo": test_elbo_summary(config, dataset, graphdef, params)}
    if config.objective.name == "autoencoder" or not config.eval.diagnostics:
        write_core_figures(config, workdir, dataset, graphdef, params)
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(results, f, indent=2)
        return results
    k = (
        config.eval.num_importance_samples
        if num_importance_samples is None
        else num_importance_samples
    )
    results["log_likelihood"] = log_likelihood_summary(config, dataset, graphdef, params, k)
    results["collapse"] = diagnose_collapse(
        graphdef,
        params,
        _limit(dataset.test_x, config.eval.max_examples),
        _key(config, _COLLAPSE),
    )
    results["sample_quality"] = sample_quality_summary(config, dataset, graphdef, params)
    kl_per_dim = np.asarray(results["collapse"]["kl_per_dim"])
    figures = write_figures(config, workdir, dataset, graphdef, params, kl_per_dim, baseline)
    if baseline is not None:
        results["autoencoder_baseline"] = test_elbo_summary(
            autoencoder_config(config), dataset, *baseline
        )
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(results, f, indent=2)
    collapse = results["collapse"]
    report.write_report(
        os.path.join(workdir, "report.html"),
        title=f"vae_jax run: {dataset.name}, {config.model.net}, β = {config.hyper.beta}",
        verdict=collapse["verdict"],
        collapsed=collapse["num_active"] < collapse["num_dims"],
        sections={
            "Test-set ELBO": results["elbo"],
            f"Importance-sampled log-likelihood (K = {k})": results["log_likelihood"],
            "Posterior collapse": {k2: v for k2, v in collapse.items() if k2 != "verdict"},
            "Sample quality (not Inception FID)": results["sample_quality"],
            "Autoencoder baseline": results.get("autoencoder_baseline", {}),
        },
        figures=figures,
        config_json=config.to_json(indent=2),
    )
    return results


def autoencoder_config(config):
    c = config.copy_and_resolve_references()
    c.objective.name = "autoencoder"
    c.train.num_steps = config.eval.autoencoder_steps
    c.eval.autoencoder_steps = 0
    return c


def finalize_run(config, workdir: str, dataset, graphdef, params) -> dict:
    """End of training: train the autoencoder baseline if asked, evaluate, write summary.json."""
    from vae_jax.train import train

    baseline = None
    if config.eval.autoencoder_steps and config.objective.name != "autoencoder":
        print(
            f"Training the autoencoder baseline ({config.eval.autoencoder_steps} steps)", flush=True
        )
        _, ae_graphdef, ae_params = train(
            autoencoder_config(config), os.path.join(workdir, "autoencoder")
        )
        baseline = (ae_graphdef, ae_params)
    results = evaluate_run(config, workdir, dataset, graphdef, params, baseline=baseline)
    summary = dict(results["elbo"])
    if "log_likelihood" in results:
        summary["test_log_likelihood_nats"] = results["log_likelihood"]["log_likelihood_nats"]
        summary["num_importance_samples"] = results["log_likelihood"]["num_importance_samples"]
        summary["collapse_verdict"] = results["collapse"]["verdict"]
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _print_summary(summary, results)
    return summary


def _print_summary(summary: dict, results: dict) -> None:
    s = summary
    print(
        f"test ELBO {s['test_elbo_nats']:.2f} nats/example (log p(x|z) "
        f"{s['test_log_px_nats']:.2f}, KL {s['test_kl_nats']:.2f}; "
        f"{s['test_bits_per_dim']:.4f} bits/dim) on {s['num_test_examples']} {s['data']} "
        "test examples",
        flush=True,
    )
    if "log_likelihood" in results:
        ll = results["log_likelihood"]
        print(
            f"test log p(x) ≈ {ll['log_likelihood_nats']:.2f} ± {ll['log_likelihood_stderr']:.2f}"
            f" nats (K = {ll['num_importance_samples']}, {ll['num_examples']} examples)"
        )
        print(results["collapse"]["verdict"])
        sq = results["sample_quality"]
        if "fd_samples" in sq:
            print(
                f"feature Fréchet distance: samples {sq['fd_samples']:.2f}, "
                f"reconstructions {sq['fd_reconstructions']:.2f}"
            )
