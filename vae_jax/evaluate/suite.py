"""Every number of a trained run, with labels that say what each one is.

`measure` runs the metrics of this package (ELBO, importance-sampled log p(x), collapse
diagnostics with the I(x;z) bounds, Fréchet distances, the validation record) and returns
eval.json's dict; vae_jax/assess.py adds the figures and the report. It loads and
measures; it never trains a VAE. Every random draw comes from a named key stream folded out
of `config.seed`, so the numbers are a function of (model, data, config). The splits it
reads carry one fixed binary draw when the data are binarized (data.pipeline); every
metric encodes exactly those inputs, and grey originals are used only where the Fréchet
distance compares with the classifier's data.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from vae_jax import platform
from vae_jax.apply import Members
from vae_jax.config_lib import autoencoder_config
from vae_jax.data.pipeline import is_lazy
from vae_jax.evaluate import feature_classifier, frechet
from vae_jax.evaluate.active_units import (
    active_units_per_layer,
    layer_names,
    posterior_statistics,
    prior_variance,
)
from vae_jax.evaluate.collapse import collapse_from_statistics
from vae_jax.evaluate.disentangle import trained as disentangle
from vae_jax.evaluate.elbo import dataset_elbo
from vae_jax.evaluate.loglik import dataset_log_likelihood, summarize_log_likelihood
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.nets import NETS
from vae_jax.priors import PRIORS
from vae_jax.progress import Timings, maybe
from vae_jax.state import make_objective, make_spec

# Independent key streams for evaluation, folded out of the run's seed. The feature
# classifier uses a fixed key instead, so every run of a data set shares one cached classifier.
KEY_STREAMS = {
    name: 10**6 + i
    for i, name in enumerate(("elbo", "loglik", "collapse", "figures", "quality", "val"))
}


def eval_key(config, stream: str) -> jax.Array:
    return jax.random.fold_in(jax.random.key(config.seed), KEY_STREAMS[stream])


def _limit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if n else x


def _loglik_chunk(config, dataset) -> int:
    """platform.loglik_chunk for this config's likelihood (its parameters per pixel)."""
    lik = config.model.likelihood
    spec = make_spec(config, dataset.shape, len(dataset.train_x), jax.random.key(0))
    return platform.loglik_chunk(config, LIKELIHOODS[lik].make(config.model[lik], spec).num_params)


def likelihood_kind(config, dataset) -> str:
    """What the reported log p(x|z), ELBO and log p(x) are, for this likelihood on this data:
    - "discrete": a probability mass, a log-probability (≤ 0); bits/dim apply: a Bernoulli
      on binary pixels, or a discretized logistic (mixture) on 8-bit pixels (trait
      "discrete_8bit": 256 levels, bits/dim comparable with the literature's 8-bit ones;
      config_check refuses binary inputs for it, where its mass on the 254 levels the data
      never take would make its bits/dim incomparable with a binary model's);
    - "density": a Gaussian (on R^D) or continuous Bernoulli (on [0, 1]^D) on grey data, a
      log-density; its bits/dim are not comparable with a discrete model's;
    - "density_at_discrete_points": such a density evaluated at binary pixels, which is
      not a log-probability of the binary data and is unbounded above; no bits/dim;
    - "unnormalized": a Bernoulli on grey data (model.allow_unnormalized), not a
      log-likelihood of anything; no bits/dim."""
    traits = LIKELIHOODS[config.model.likelihood].traits
    if "discrete_8bit" in traits:  # a pmf on {0, 1/255, …, 1}: every uint8 image is in it
        return "discrete"
    if "discrete" in traits:
        return "discrete" if dataset.binary_inputs else "unnormalized"
    return "density_at_discrete_points" if dataset.binary_inputs else "density"


def is_normalized(config, dataset) -> bool:
    """Whether the reported log p(x|z) is a log-likelihood of the data as given: a
    probability of binary or 8-bit pixels, or a density of grey ones."""
    return likelihood_kind(config, dataset) in ("discrete", "density")


LIKELIHOOD_NOTES = {
    "unnormalized": (
        "Bernoulli likelihood on grey (non-binary) data: not a normalised density, so the "
        "ELBO and log p(x) here are not log-likelihoods (Loaiza-Ganem & Cunningham 2019); "
        "model.allow_unnormalized=True"
    ),
    "density_at_discrete_points": (
        "a continuous density evaluated at binary pixels: not a log-probability of the "
        "binary data (and unbounded above when σ is learned); use the Bernoulli likelihood "
        "for binary data"
    ),
}


def encoded_description(dataset) -> str:
    """What the encoder sees in evaluation, for figure captions and the report."""
    if dataset.binarization == "none":
        return "binary images" if dataset.binary_inputs else "grey intensities in [0, 1]"
    if dataset.binarization == "threshold":
        return "binary: the test images thresholded at 0.5"
    return "binary: the fixed Bernoulli draw of the test images that the test ELBO uses"


def run_info(config, dataset, step: int | None = None) -> dict:
    """What was trained, for the report's headline and eval.json."""
    mc = config.model
    arch = NETS[mc.net].describe(mc[mc.net], mc.net)
    return {
        "data": dataset.name,
        "data_description": dataset.description,
        "encoded_inputs": encoded_description(dataset),
        "net": arch,
        "latent_dim": mc.latent_dim + (mc[mc.net].top_latent_dim if is_hierarchical(config) else 0),
        **(
            {"latent_layers": {"z1": mc.latent_dim, "z2": mc[mc.net].top_latent_dim}}
            if is_hierarchical(config)
            else {}
        ),
        "likelihood": mc.likelihood,
        "prior": mc.prior,
        "objective": config.objective.name,
        "beta": float(config.hyper.beta),
        "steps": int(config.train.num_steps if step is None else step),
        "batch_size": config.data.batch_size,
        "seed": config.seed,
        "platform": platform.info(),
        "execution": {**platform.execution(config), "loglik_chunk": _loglik_chunk(config, dataset)},
        "normalized_likelihood": is_normalized(config, dataset),
    }


def _bits_per_dim_note(kind: str, likelihood: str, dims: int) -> str:
    traits = LIKELIHOODS[likelihood].traits
    if kind in LIKELIHOOD_NOTES:
        return "none: " + LIKELIHOOD_NOTES[kind].split(":")[0]
    if kind == "discrete":
        pixels = "8-bit pixels (256 levels)" if "discrete_8bit" in traits else "binary pixels"
        return f"−ELBO / (D ln 2), D = {dims}: bits/dim of a discrete model of {pixels}"
    support = "R^D" if "real" in traits else "[0, 1]^D" if "unit_interval" in traits else "?"
    return (
        f"−ELBO / (D ln 2), D = {dims}, of a density on {support}: not comparable with the "
        "bits/dim of discrete (binary or 8-bit) models"
    )


def is_hierarchical(config) -> bool:
    """Whether the net has several stochastic layers (model.net=mlp2)."""
    return "hierarchical" in NETS[config.model.net].traits


def kl_estimate(config) -> str:
    """How the reported KL is computed: in closed form, or by Monte Carlo from the ELBO's
    samples of z (a prior without a closed-form KL: MoG, VampPrior, flow)."""
    if is_hierarchical(config):
        return (
            "Monte Carlo: log q(z1, z2|x) − log p(z1, z2) at the ELBO's "
            f"{config.eval.num_samples} z sample(s) (two stochastic layers)"
        )
    if "analytic_kl" in PRIORS[config.model.prior].traits:
        return "closed form"
    return f"Monte Carlo: log q(z|x) − log p(z) at the ELBO's {config.eval.num_samples} z sample(s)"


def _stderr(values: np.ndarray) -> float | None:
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None


def _elbo(config, graphdef, state, images, *, key=None, deterministic=False, progress=None) -> dict:
    """Per-example ELBO terms of `images` with eval.num_samples and the "elbo" key stream
    (`key`: one per member, for Members)."""
    return dataset_elbo(
        graphdef,
        state,
        images,
        eval_key(config, "elbo") if key is None else key,
        num_samples=config.eval.num_samples,
        batch_size=min(config.eval.batch_size, len(images)),
        deterministic=deterministic,
        progress=progress,
    )


def test_elbo_summary(
    config, dataset, graphdef, params, *, deterministic: bool = False, progress="test ELBO"
) -> dict:
    """ELBO, log p(x|z) and KL on the test split, in nats per example, plus bits/dim."""
    test_x = _limit(dataset.test_x, config.eval.max_examples)
    terms = _elbo(config, graphdef, params, test_x, deterministic=deterministic, progress=progress)
    return elbo_summary(config, dataset, terms, deterministic=deterministic)


def elbo_summary(config, dataset, terms: dict, *, deterministic: bool = False) -> dict:
    """test_elbo_summary's dict from one model's per-example terms (dataset_elbo's)."""
    test_x = _limit(dataset.test_x, config.eval.max_examples)
    dims = int(np.prod(dataset.shape))
    elbo = float(terms["elbo"].mean())
    kind = likelihood_kind(config, dataset)
    bits = kind in ("discrete", "density") and not deterministic  # an AE's value is no bound
    summary = {
        "test_elbo_nats": elbo,
        "test_elbo_stderr": _stderr(terms["elbo"]),
        "test_log_px_nats": float(terms["log_px"].mean()),
        "test_kl_nats": float(terms["kl"].mean()),
        "kl_estimate": "none (autoencoder)" if deterministic else kl_estimate(config),
        "test_bits_per_dim": -elbo / (dims * np.log(2.0)) if bits else None,
        "num_test_examples": len(test_x),
        "elbo_samples": config.eval.num_samples,
        "objective": config.objective.name,
        "beta": float(config.hyper.beta),
        "likelihood": config.model.likelihood,
        "normalized_likelihood": kind in ("discrete", "density"),
        "deterministic": deterministic,
        "likelihood_kind": kind,
        "data": dataset.name,
        "binarization": dataset.binarization,
        "data_description": dataset.description,
        "bits_per_dim_note": _bits_per_dim_note(kind, config.model.likelihood, dims),
    }
    if kind in LIKELIHOOD_NOTES:
        summary["likelihood_note"] = LIKELIHOOD_NOTES[kind]
    if deterministic:
        summary["note"] = "autoencoder: no KL term; test_elbo_nats is log p(x|z=μ(x)), not a bound"
        summary["bits_per_dim_note"] = "none: an autoencoder's log p(x|z=μ(x)) is not a bound"
    return summary


def log_likelihood_summary(config, dataset, graphdef, params, num_samples: int) -> dict:
    """Importance-sampled log p(x) with K = num_samples (Burda et al. 2015)."""
    values, elbo = _log_likelihood_arrays(config, dataset, graphdef, params, num_samples)
    return log_likelihood_from(config, dataset, values, elbo, num_samples)


def _log_likelihood_arrays(config, dataset, graphdef, state, num_samples, keys=None):
    """Per-example log p(x) and ELBO on eval.loglik_examples test examples ([M, N] each
    for Members, with `keys` {"loglik": [M], "elbo": [M]})."""
    test_x = _limit(dataset.test_x, config.eval.loglik_examples)
    # M members in one program hold M times a chunk's activations: the chunk shrinks with
    # them (it sets the memory and speed, never the numbers).
    members = 1 if keys is None else len(keys["loglik"])
    chunk = max(1, min(_loglik_chunk(config, dataset), num_samples) // members)
    values = dataset_log_likelihood(
        graphdef,
        state,
        test_x,
        eval_key(config, "loglik") if keys is None else keys["loglik"],
        num_samples=num_samples,
        chunk_size=chunk,  # a remainder (K not a multiple) is one more, smaller chunk
        batch_size=min(config.eval.loglik_batch_size, len(test_x)),
        progress=f"log p(x), K = {num_samples}",
    )
    elbo = _elbo(config, graphdef, state, test_x, key=None if keys is None else keys["elbo"])
    return values, elbo["elbo"]


def log_likelihood_from(config, dataset, values, elbo, num_samples: int) -> dict:
    """log_likelihood_summary's dict from one model's per-example log p(x) and ELBO."""
    out = {
        **summarize_log_likelihood(values, int(np.prod(dataset.shape))),
        "num_importance_samples": num_samples,
        "elbo_same_examples_nats": float(elbo.mean()),  # the bound it tightens, same examples
    }
    kind = likelihood_kind(config, dataset)
    if kind in LIKELIHOOD_NOTES:
        out.update(bits_per_dim=None, nll_nats=None, likelihood_note=LIKELIHOOD_NOTES[kind])
    return out


def classifier_cache_path(config, dataset) -> str:
    """One cache folder per data set, training split and classifier length: the steps keep
    runlocal's short classifier apart, the fingerprint of the training images and labels
    keeps runs with another validation split from overwriting each other's."""
    cache_dir = config.eval.classifier_dir or os.path.expanduser("~/.cache/vae_jax")
    steps = config.eval.classifier_steps
    fingerprint = feature_classifier.data_fingerprint(dataset.train_raw, dataset.train_y)[:10]
    return os.path.join(cache_dir, f"classifier_{dataset.name}_{steps}steps_{fingerprint}")


def sample_quality_summary(config, dataset, graphdef, params, timings=None) -> dict:
    """Fréchet distance in a small classifier's feature space; skipped (with the reason)
    when the data set has no labels to train the classifier on."""
    if not config.eval.sample_quality:
        return {"skipped": "eval.sample_quality=False"}
    # The classifier trains on the grey training images; the real side of every distance,
    # and the real-vs-real floor (held-out validation images, never seen by the
    # classifier), use grey images too. The model side is E[x|z], which for binarized data
    # estimates those grey intensities; reconstructions encode the binary test draw.
    if (dataset.train_y < 0).all():
        return {"skipped": f"{dataset.name} has no labels to train the feature classifier"}
    if is_lazy(dataset.train_raw):
        return {
            "skipped": f"{dataset.name}: its only labels are the 3 shapes, and the features of "
            "a shape classifier say little of the quality of sprite samples (position, scale "
            "and orientation would be invisible to them); its training split is also rendered "
            "on demand, not held as the array the feature classifier trains on"
        }
    cache = classifier_cache_path(config, dataset)
    with maybe(timings, "eval: feature classifier"):
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
    has_val = dataset.val_raw is not None and len(dataset.val_raw) >= 2
    with maybe(timings, "eval: Fréchet distances"):
        return frechet.sample_quality(
            graphdef,
            params,
            classifier,
            _limit(dataset.test_raw, n),
            eval_key(config, "quality"),
            encoder_inputs_u8=_limit(dataset.test_x, n),
            reference_images_u8=dataset.val_raw if has_val else None,
            progress="Fréchet distances",
        )


def validation_summary(workdir: str, num_val_examples: int, step: int | None = None) -> dict:
    """The validation ELBO logged during training (metrics.jsonl `val_elbo`) up to `step`,
    the step of the params being evaluated (an interrupted run's log may go further): the
    last value and the best, with their steps. {} when none was logged."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [r for r in rows if r.get("val_elbo") is not None]
    rows = [r for r in rows if step is None or r["step"] <= step]
    if not rows:
        return {}
    best = max(rows, key=lambda r: r["val_elbo"])
    return {
        "final_val_elbo_nats": rows[-1]["val_elbo"],
        "final_step": rows[-1]["step"],
        "best_val_elbo_nats": best["val_elbo"],
        "best_step": best["step"],
        "num_val_examples": int(num_val_examples),
    }


def measure(
    config,
    workdir,
    dataset,
    graphdef,
    state,
    *,
    baseline=None,
    num_importance_samples: int | None = None,
    step: int | None = None,
    timings: Timings | None = None,
) -> dict:
    """All numbers for a trained model (eval.json's dict, without the figures).

    `state` is the model's whole variable state (model.full_state: params and batch
    statistics); `baseline` the plain autoencoder's (graphdef, state), if one was trained;
    `step` the training step of `state` (the config's last step when None). What the
    objective is (deterministic, a bound) decides what is measured."""
    results = _measure(
        [config],
        [workdir],
        dataset,
        graphdef,
        state,
        num_importance_samples=num_importance_samples,
        step=step,
        timings=timings,
    )[0]
    if baseline is not None and "collapse" in results:
        with maybe(timings, "eval: autoencoder baseline"):
            results["autoencoder_baseline"] = test_elbo_summary(
                autoencoder_config(config),
                dataset,
                *baseline,
                deterministic=True,
                progress="autoencoder baseline",
            )
    return results


def measure_members(
    configs, workdirs, dataset, graphdef, stacked, *, timings: Timings | None = None
) -> list[dict]:
    """`measure` for the members of a sweep group (configs that differ only in traced
    values: hyper.*, the seed), whose variables are stacked along a leading axis. The test
    ELBO, log p(x) and the posterior statistics run for all members in one vmapped program
    (vae_jax.apply.Members), each member with its own config's key streams, so member m's
    numbers are those of `measure` on it alone; the I(x;z) bounds and the Fréchet
    distances run member by member. One results dict per member."""
    return _measure(configs, workdirs, dataset, graphdef, Members(stacked), timings=timings)


def _measure(
    configs,
    workdirs,
    dataset,
    graphdef,
    state,
    *,
    num_importance_samples=None,
    step=None,
    timings=None,
) -> list[dict]:
    """measure / measure_members: `state` one model's, or Members (then every config's)."""
    config = configs[0]  # members differ only in traced values (their keys, β, ...)
    stacked = isinstance(state, Members)

    def keys(stream):
        if not stacked:
            return eval_key(config, stream)
        return jax.numpy.stack([eval_key(c, stream) for c in configs])

    def member(tree, i):  # member i's part of an array, a results pytree or the state
        return jax.tree.map(lambda v: v[i], tree) if stacked else tree

    count = len(configs)
    objective = make_objective(config, make_spec(config, dataset.shape, len(dataset.train_x)))
    print("Evaluating" + (f" {count} members together" if stacked else ""), flush=True)
    with maybe(timings, "eval: test ELBO"):
        terms = _elbo(
            config,
            graphdef,
            state,
            _limit(dataset.test_x, config.eval.max_examples),
            key=keys("elbo"),
            deterministic=objective.deterministic,
            progress="test ELBO",
        )
    results = []
    for i, (c, workdir) in enumerate(zip(configs, workdirs, strict=True)):
        r = {
            "run": run_info(c, dataset, step),
            "elbo": elbo_summary(
                c, dataset, member(terms, i), deterministic=objective.deterministic
            ),
        }
        validation = validation_summary(workdir, len(dataset.val_x), step)
        if validation:
            r["validation"] = validation
        results.append(r)
    if not objective.bound or not config.eval.diagnostics:
        return results
    k = (
        config.eval.num_importance_samples
        if num_importance_samples is None
        else num_importance_samples
    )
    with maybe(timings, "eval: log p(x)"):
        values, elbo = _log_likelihood_arrays(
            config,
            dataset,
            graphdef,
            state,
            k,
            keys=None if not stacked else {"loglik": keys("loglik"), "elbo": keys("elbo")},
        )
        for i, r in enumerate(results):
            r["log_likelihood"] = log_likelihood_from(
                configs[i], dataset, member(values, i), member(elbo, i), k
            )
    with maybe(timings, "eval: collapse diagnostics"):
        images = _limit(dataset.test_x, config.eval.max_examples)
        layer = layer_names(graphdef, member(state.state, 0) if stacked else state, images)[0]
        split = [jax.random.split(eval_key(c, "collapse")) for c in configs]
        stats = posterior_statistics(
            graphdef,
            state,
            images,
            jax.numpy.stack([s[0] for s in split]) if stacked else split[0][0],
            layer=layer,
            progress="collapse diagnostics",
        )
        for i, r in enumerate(results):
            variance = prior_variance(  # a learned prior's scale, for the active units
                graphdef,
                member(state.state, i) if stacked else state,
                jax.random.fold_in(eval_key(configs[i], "collapse"), 7),
                layer,
            )
            r["collapse"] = collapse_from_statistics(
                member(stats, i), split[i][1], layer, prior_var=variance
            )
            if is_hierarchical(configs[i]):  # Burda et al.'s Table 2: AU of each layer
                per_layer = active_units_per_layer(
                    graphdef,
                    member(state.state, i) if stacked else state,
                    images,
                    jax.random.fold_in(eval_key(configs[i], "collapse"), 11),
                    jax.random.fold_in(eval_key(configs[i], "collapse"), 7),  # as `variance`
                    exact_means={layer: member(stats, i)["loc"]},  # the collapse's own μ1
                )
                c = r["collapse"]
                c["active_units_per_layer"] = per_layer
                counts = ", ".join(
                    f"{n} {v['active_units']}/{v['num_dims']}" for n, v in per_layer.items()
                )
                c["verdict"] = (
                    f"layer {layer} (its KL per dimension is to N(0, 1), not to p(z1|z2)): "
                    f"{c['verdict']}; active units per layer: {counts}"
                )
    for i, r in enumerate(results):
        r["sample_quality"] = sample_quality_summary(
            configs[i],
            dataset,
            graphdef,
            member(state.state, i) if stacked else state,
            timings=timings,
        )
    if dataset.ground_truth is not None and config.eval.disentanglement:
        with maybe(timings, "eval: disentanglement metrics"):
            scores = disentangle.score_models(
                dataset.ground_truth,
                graphdef,
                state,
                seed=config.eval.disentanglement_seed,
                points=config.eval.disentanglement_points,
                dci_trees=config.eval.dci_trees,
                members=len(configs) if stacked else None,
            )
        for r, score in zip(results, scores, strict=True):
            r["disentanglement"] = score
    return results


def _pm(value: float, stderr: float | None) -> str:
    return f"{value:.2f}" + ("" if stderr is None else f" ± {stderr:.2f}")


def summary_lines(results: dict) -> list[str]:
    """The short summary printed at the end of training and by `python -m vae_jax.evaluate`."""
    e = results["elbo"]
    unnorm = {
        "unnormalized": " [not a log-likelihood]",
        "density_at_discrete_points": " [a density at binary points, not a log-probability]",
    }.get(e.get("likelihood_kind"), "")
    bpd = "" if e["test_bits_per_dim"] is None else f"; {e['test_bits_per_dim']:.4f} bits/dim"
    autoencoder = e.get("deterministic", False)
    name = "log p(x|z=μ(x)) (autoencoder, not a bound)" if autoencoder else "ELBO"
    lines = [
        f"test {name} {_pm(e['test_elbo_nats'], e['test_elbo_stderr'])} nats/example "
        f"(log p(x|z) {e['test_log_px_nats']:.2f}, KL {e['test_kl_nats']:.2f}{bpd}) on "
        f"{e['num_test_examples']} {e['data']} test examples{unnorm}"
    ]
    if "log_likelihood" in results:
        ll = results["log_likelihood"]
        lines.append(
            f"test log p(x) ≈ {_pm(ll['log_likelihood_nats'], ll['log_likelihood_stderr'])}"
            f" nats (K = {ll['num_importance_samples']}, {ll['num_examples']} examples; "
            f"ELBO on them {ll['elbo_same_examples_nats']:.2f}){unnorm}"
        )
    if "validation" in results:
        v = results["validation"]
        what = "log p(x|z=μ(x))" if autoencoder else "ELBO"
        lines.append(
            f"validation {what} {v['final_val_elbo_nats']:.2f} at step {v['final_step']} "
            f"(best {v['best_val_elbo_nats']:.2f} at step {v['best_step']})"
        )
    if "collapse" in results:
        lines.append(results["collapse"]["verdict"])
    if "disentanglement" in results:
        values = disentangle.headline(results["disentanglement"])
        lines.append(
            f"disentanglement of μ(x) ({results['disentanglement']['protocol_name']}): "
            + ", ".join(f"{disentangle.HEADLINES[k][1]} {v:.3f}" for k, v in values.items())
        )
    sq = results.get("sample_quality", {})
    if "fd_samples" in sq:
        floor = sq.get("fd_reference_test_vs_val")
        m, n = sq.get("num_reference_examples"), sq["num_samples"]
        lines.append(
            f"feature Fréchet distance: samples {sq['fd_samples']:.2f}, reconstructions "
            f"{sq['fd_reconstructions']:.2f}"
            + ("" if floor is None else f", real-vs-real floor {floor:.2f}")
            + ("" if floor is None or m == n else f" (from {m} images against {n})")
        )
    if "autoencoder_baseline" in results:
        ae = results["autoencoder_baseline"]
        lines.append(f"autoencoder baseline: log p(x|z=μ(x)) {ae['test_elbo_nats']:.2f} nats")
    return lines


def summary_of(results: dict, timings: dict | None = None) -> dict:
    """summary.json: the test ELBO block, the platform and how the run executed, the
    validation record, log p(x) with its K, the collapse verdict, the I(x;z) bounds, and the
    wall seconds of each phase (`timings`, when given)."""
    summary = {
        **results["elbo"],
        "platform": results["run"]["platform"],
        "execution": results["run"]["execution"],
    }
    if "validation" in results:
        summary["validation"] = results["validation"]
    if "log_likelihood" in results:
        ll = results["log_likelihood"]
        summary["test_log_likelihood_nats"] = ll["log_likelihood_nats"]
        summary["test_log_likelihood_stderr"] = ll["log_likelihood_stderr"]
        summary["num_importance_samples"] = ll["num_importance_samples"]
        summary["collapse_verdict"] = results["collapse"]["verdict"]
        summary["mutual_info"] = results["collapse"]["mutual_info"]
    if "disentanglement" in results:
        d = results["disentanglement"]
        summary["disentanglement"] = disentangle.headline(d)
        summary["disentanglement_protocol"] = d["protocol_name"]
    if timings:
        summary["timings"] = timings
    return summary


def written_lines(workdir: str, results: dict) -> list[str]:
    """'wrote PATH' for the files an evaluation wrote (report.html only with diagnostics)."""
    names = ["eval.json", "summary.json"] + (["report.html"] if "collapse" in results else [])
    return [f"wrote {os.path.join(workdir, name)}" for name in names]
