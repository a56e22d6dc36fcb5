"""The five disentanglement metrics of trained VAEs: one model, or a sweep group's members
encoded together (one program per batch, `vae_jax.apply.Members`).

The representation is the encoder mean μ(x) of the first latent layer, disentanglement_lib's
`mean_representation` (Locatello et al. 2019 score every model on it). Every metric draws its
points once (`draw`, independent of the models), the members encode the same observations,
and each member's codes are scored alone (the sklearn classifiers are fitted per member).

Sizes: `points` = 0 keeps disentanglement_lib's protocol (10,000 training points, 5,000
evaluation points; BetaVAE and FactorVAE batches of 64); `points` = n scales every metric to
n training points and n/2 evaluation points (BetaVAE, FactorVAE: n/2; FactorVAE's variance
estimate: n), for a CPU-sized run, and the result records the sizes it used. `dci_trees` is
the number of boosting stages of DCI's GradientBoostingClassifier (sklearn's and
disentanglement_lib's default: 100).

Besides the metrics, `latent_factors` says which factor each latent dimension captures: the
factor with the largest normalised mutual information I(z_d; v_k)/H(v_k) on MIG's points (the
same 20-bin histogram estimate), for figure captions.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning

from vae_jax.apply import apply_batches, batch_fn
from vae_jax.evaluate.disentangle import METRICS
from vae_jax.evaluate.disentangle.common import (
    discrete_entropy,
    discrete_mutual_info,
    encode,
    histogram_discretize,
)

METRIC_NAMES = ("beta_vae", "factor_vae", "mig", "dci", "sap")
# The headline number of each metric, for tables and plots.
HEADLINES = {
    "beta_vae": ("eval_accuracy", "BetaVAE score"),
    "factor_vae": ("eval_accuracy", "FactorVAE score"),
    "mig": ("discrete_mig", "MIG"),
    "dci": ("disentanglement", "DCI disentanglement"),
    "sap": ("sap_score", "SAP"),
}
ENCODE_BATCH = 1024


@batch_fn
def _first_layer_means(model, x, key):
    del key
    return next(iter(model.latent_layers(model.posterior(x)).values())).loc


def representation_fn(graphdef, state):
    """observations (uint8 images [n, H, W, C]) -> μ(x) [n, D], or [M, n, D] for Members."""

    def fn(observations: np.ndarray) -> np.ndarray:
        return apply_batches(_first_layer_means, graphdef, state, observations, ENCODE_BATCH)

    return fn


def protocol_sizes(points: int) -> dict[str, dict]:
    """Each metric's `draw` sizes: disentanglement_lib's (points = 0) or scaled to n."""
    if not points:
        return {name: {} for name in METRIC_NAMES}
    half = max(points // 2, 2)
    return {
        "beta_vae": {"num_train": points, "num_eval": half},
        "factor_vae": {"num_variance_estimate": points, "num_train": points, "num_eval": half},
        "mig": {"num_train": points},
        "dci": {"num_train": points, "num_test": half},
        "sap": {"num_train": points, "num_test": half},
    }


def latent_factors(codes: np.ndarray, factors: np.ndarray, names) -> list[dict]:
    """Per latent dimension: the factor it shares most information with, and how much
    (I(z_d; v_k) / H(v_k), 20-bin histogram of z_d). codes [n, D], factors [n, F]."""
    mi = discrete_mutual_info(histogram_discretize(codes, 20), factors)  # [D, F]
    normalised = mi / np.maximum(discrete_entropy(factors), 1e-12)[None, :]
    best = normalised.argmax(axis=1)
    return [
        {"dim": d, "factor": names[k], "normalized_mi": float(normalised[d, k])}
        for d, k in enumerate(best)
    ]


def score_models(
    data, graphdef, state, *, seed: int, points: int = 0, dci_trees: int = 100, members=None
) -> list[dict]:
    """The five metrics for one model (`members` None: a list of one) or for the `members`
    models stacked in `state` (a Members). Each dict: {metric: {...scalars}, "latent_factors",
    "protocol"}."""
    fn = representation_fn(graphdef, state)
    sizes = protocol_sizes(points)
    count = 1 if members is None else members
    out = [{"protocol": {}} for _ in range(count)]
    for name in METRIC_NAMES:
        metric = METRICS[name]
        draw = metric.draw(data, seed=seed, **sizes[name])
        codes = encode(data, draw, fn)
        options = {}
        if name == "dci":
            options["model"] = GradientBoostingClassifier(n_estimators=dci_trees, random_state=seed)
        with warnings.catch_warnings(record=True) as caught:
            # lbfgs stops at max_iter = 100 on unscaled BetaVAE features, as it does in
            # disentanglement_lib; recorded in the protocol instead of printed per member.
            warnings.simplefilter("always", ConvergenceWarning)
            scores = metric.score(draw, codes, **options)
        converged = True
        for w in caught:  # other warnings are shown as they would have been
            if issubclass(w.category, ConvergenceWarning):
                converged = False
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        scores = scores if isinstance(scores, list) else [scores]
        for m, s in enumerate(scores):
            out[m][name] = {k: float(v) for k, v in s.items()}
            out[m]["protocol"][name] = {
                **draw.protocol,
                **({"trees": dci_trees} if name == "dci" else {}),
                # (over the group's members: the fits are made inside one score call)
                **({} if converged else {"classifier_converged_all_members": False}),
            }
        if name == "mig":
            member_codes = codes["train"] if members is not None else codes["train"][None]
            for m in range(count):
                out[m]["latent_factors"] = latent_factors(
                    member_codes[m], draw.labels["train"], draw.factor_names
                )
    for o in out:
        o["representation"] = "encoder mean μ(x) of the first latent layer"
        o["seed"] = seed
        o["protocol_name"] = protocol_name(points, dci_trees)
    return out


def protocol_name(points: int, dci_trees: int) -> str:
    """ "disentanglement_lib protocol", or what the reduced one changed."""
    if not points and dci_trees == 100:
        return "disentanglement_lib protocol"
    changed = (
        [f"{points} training and {max(points // 2, 2)} evaluation points"] if points else []
    ) + ([f"DCI with {dci_trees} trees"] if dci_trees != 100 else [])
    return "reduced protocol: " + ", ".join(changed)


def headline(result: dict) -> dict[str, float]:
    """{metric name: its headline value} from one model's result."""
    return {name: result[name][key] for name, (key, _) in HEADLINES.items() if name in result}
