"""Config validation: every bad value stops the run before any work, in one line that
names the field, the value and what is allowed."""

from __future__ import annotations

import math

import numpy as np

from vae_jax.components import Spec
from vae_jax.data import BINARIZATIONS, DATASETS
from vae_jax.errors import ConfigError, fail
from vae_jax.hyper import check_hyper
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.nets import NETS
from vae_jax.objectives import OBJECTIVES
from vae_jax.priors import PRIORS

OPTIMIZERS = ("adam", "adamw", "sgd")
FLOAT32_MAX = float(np.finfo(np.float32).max)
SWITCH_VALUES = ("auto", "true", "false", "1", "0", "yes", "no")


def _choice(c, field: str, options):
    value = c
    for part in field.split("."):
        value = value[part]
    if value not in options:
        fail(field, value, f"choose one of {sorted(options)}")


def _positive_int(c, field: str, allow_zero: bool = False):
    value = c
    for part in field.split("."):
        value = value[part]
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        fail(
            field, value, "must be a " + ("non-negative" if allow_zero else "positive") + " integer"
        )


def _finite_float(field: str, value) -> None:
    """A real number that float32 holds: not a bool, string, inf, nan, or beyond ±3.4e38."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(field, value, "must be a number")
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        fail(field, value, f"must be finite and within float32's range (|x| ≤ {FLOAT32_MAX:.3g})")


def validate_config(c) -> None:
    _choice(c, "data.name", DATASETS)
    _choice(c, "data.source", ("auto", "idx", "tfds", "procedural"))
    if c.data.source == "procedural" and c.data.name not in ("dsprites", "synthetic"):
        fail(
            "data.source",
            "procedural",
            f"only dsprites is generated procedurally; {c.data.name} is read from files: "
            "choose auto, idx or tfds",
        )
    _choice(c, "data.binarize", BINARIZATIONS)
    _choice(c, "model.net", NETS)
    _choice(c, "model.likelihood", LIKELIHOODS)
    _choice(c, "model.prior", PRIORS)
    _choice(c, "objective.name", OBJECTIVES)
    _choice(c, "train.optimizer", OPTIMIZERS)
    _choice(c, "train.loss_reduction", ("mean", "sum"))
    _choice(c, "train.lr_schedule", ("constant", "cosine"))
    _choice(c, "train.matmul_precision", ("default", "high", "highest"))
    _choice(c, "train.compute_dtype", ("float32", "bfloat16"))
    for field in ("train.fuse_steps", "train.cpu_tuning"):
        value = c.train[field.split(".")[1]]
        if str(value).lower() not in SWITCH_VALUES:
            fail(field, value, "choose auto, true or false")
    for f in (
        "data.batch_size",
        "model.latent_dim",
        "train.num_steps",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "train.max_nonfinite_steps",
        "eval.batch_size",
        "eval.num_samples",
        "data.image_size",
        "data.synthetic_size",
        "eval.num_importance_samples",
        "eval.loglik_batch_size",
        "eval.fd_num_examples",
        "eval.classifier_steps",
        "eval.dci_trees",
    ):
        _positive_int(c, f)
    devices = c.parallel.data
    if (
        isinstance(devices, bool)
        or not isinstance(devices, int)
        or not (devices == -1 or devices >= 1)
    ):
        fail("parallel.data", devices, "must be -1 (all devices) or a positive integer")
    val_size = c.data.val_size
    if isinstance(val_size, bool) or not (isinstance(val_size, int) and val_size >= -1):
        fail("data.val_size", c.data.val_size, "must be -1 (auto), 0 (none) or a positive integer")
    for f in (
        "eval.max_examples",
        "eval.num_figure_examples",
        "eval.loglik_examples",
        "eval.autoencoder_steps",
        "eval.disentanglement_points",
        "eval.disentanglement_seed",
        "eval.loglik_chunk",
        "train.eval_every",
    ):
        _positive_int(c, f, allow_zero=True)
    for registry, section, name in _components(c):
        registry[name].validate(c[section][name], None)
    if 0 < c.eval.disentanglement_points < 100:
        fail(
            "eval.disentanglement_points",
            c.eval.disentanglement_points,
            "must be 0 (disentanglement_lib's protocol) or at least 100 (fewer points can "
            "leave a classifier with a single class to fit)",
        )
    if c.eval.max_examples == 1:
        fail("eval.max_examples", 1, "must be 0 (all) or at least 2 (spreads need two)")
    if c.eval.fd_num_examples < 2:
        fail("eval.fd_num_examples", c.eval.fd_num_examples, "must be at least 2 (a covariance)")
    for name, value in c.hyper.items():  # traced in float32: inf, nan or overflow is refused
        _finite_float(f"hyper.{name}", value)
    for field in (
        "train.learning_rate",
        "train.grad_clip_norm",
        "train.max_nonfinite_fraction",
        "eval.sample_temperature",
    ):
        section, name = field.split(".")
        _finite_float(field, c[section][name])
    if not c.hyper.beta >= 0:
        fail("hyper.beta", c.hyper.beta, "must be ≥ 0 (β weights the KL term)")
    check_hyper(c.hyper, c.objective.name, OBJECTIVES[c.objective.name].traits, c.model.prior)
    if "hierarchical" in NETS[c.model.net].traits:
        _check_hierarchical(c)
    if not c.train.learning_rate > 0:
        fail("train.learning_rate", c.train.learning_rate, "must be > 0")
    if not c.train.grad_clip_norm >= 0:
        fail("train.grad_clip_norm", c.train.grad_clip_norm, "must be ≥ 0 (0 turns it off)")
    if not 0 <= c.train.max_nonfinite_fraction <= 1:
        fail(
            "train.max_nonfinite_fraction",
            c.train.max_nonfinite_fraction,
            "must be in [0, 1] (the share of skipped steps that fails a run)",
        )
    if not c.eval.sample_temperature > 0:
        fail("eval.sample_temperature", c.eval.sample_temperature, "must be > 0")
    if c.eval.sample_temperature != 1.0 and "temperature" not in PRIORS[c.model.prior].traits:
        fail(
            "eval.sample_temperature",
            c.eval.sample_temperature,
            f"the prior '{c.model.prior}' defines no sampling temperature; use 1.0",
        )
    if c.train.checkpoint_every % c.train.log_every:
        fail(
            "train.checkpoint_every",
            c.train.checkpoint_every,
            f"must be a multiple of train.log_every={c.train.log_every}",
        )


# Objectives whose maths assumes one latent layer under a factorised prior: the MMD
# against prior draws (infovae) and the total-correlation split (beta_tcvae).
ONE_LAYER_OBJECTIVES = ("infovae", "beta_tcvae")


def _check_hierarchical(c) -> None:
    """Two stochastic layers (model.net=mlp2): p(z2) is a density over an array, the KL
    is a Monte Carlo estimate (no per-dimension closed form for free bits), and the
    objective must treat z as a tree."""
    net = c.model.net
    if c.model.prior == "vamp":
        fail(
            "model.prior",
            "vamp",
            f"the VampPrior's mixture of encoder posteriors needs a one-layer encoder, not "
            f"model.net='{net}'; use standard_normal, mog or flow (a prior over z2), or "
            "model.net=mlp",
        )
    if c.objective.name in ONE_LAYER_OBJECTIVES:
        fail(
            "objective.name",
            c.objective.name,
            f"it needs one latent layer, and model.net='{net}' has two; use elbo, iwae or "
            "annealed, or model.net=mlp",
        )
    if c.hyper.free_bits > 0:
        fail(
            "hyper.free_bits",
            c.hyper.free_bits,
            f"free bits need a closed-form KL per dimension, which model.net='{net}' (p(z1|z2) "
            "depends on z2) does not have; use 0",
        )


def validate_for_data(c, spec: Spec, binary_inputs: bool = True, num_test: int | None = None):
    """Checks that need the loaded data set: batch size, test-set size, a Bernoulli
    likelihood only on binary inputs, an 8-bit one only on grey inputs, and each part's own
    data checks (e.g. the conv net's image sizes)."""
    num_train = spec.num_train
    if num_test is not None and num_test < 2:
        raise ConfigError(
            f"the {c.data.name} test split holds {num_test} example(s); evaluation needs at "
            "least 2 (for data.name=synthetic raise data.synthetic_size to 10 or more)"
        )
    if c.model.likelihood == "bernoulli" and not binary_inputs and not c.model.allow_unnormalized:
        raise ConfigError(
            f"config.model.likelihood='bernoulli' needs binary data, but data.binarize='none' "
            f"leaves {c.data.name}'s grey levels, where the Bernoulli 'log-likelihood' is not "
            "normalised (its ELBO and bits/dim are not log-likelihoods). Fixes: binarize "
            "(--config.data.binarize=dynamic), or use the continuous Bernoulli "
            "(--config.model.likelihood=continuous_bernoulli); to train on it anyway, as "
            "pytorch/examples does, set --config.model.allow_unnormalized=True"
        )
    if "discrete_8bit" in LIKELIHOODS[c.model.likelihood].traits and binary_inputs:
        made_binary = (
            f"data.binarize='{c.data.binarize}' makes"
            if c.data.binarize != "none"
            else f"{c.data.name} has"
        )
        raise ConfigError(
            f"config.model.likelihood='{c.model.likelihood}' models 8-bit pixels (256 levels), "
            f"but {made_binary} binary pixels, where its bits/dim would not be comparable with "
            "a binary model's. Fixes: keep the grey levels (--config.data.binarize=none, on an "
            "8-bit data set such as mnist or fashion_mnist), or use "
            "--config.model.likelihood=bernoulli for binary data"
        )
    if c.data.batch_size > num_train:
        fail(
            "data.batch_size",
            c.data.batch_size,
            f"larger than the training set ({num_train} examples); use at most {num_train}",
        )
    for registry, section, name in _components(c):
        registry[name].validate(c[section][name], spec)


def _components(c):
    """(registry, config section, chosen name) of every part the config selects."""
    return [
        (NETS, "model", c.model.net),
        (LIKELIHOODS, "model", c.model.likelihood),
        (PRIORS, "model", c.model.prior),
        (OBJECTIVES, "objective", c.objective.name),
    ]
