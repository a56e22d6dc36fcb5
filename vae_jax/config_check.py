"""Config validation: every bad value stops the run before any work, in one line that
names the field, the value and what is allowed."""

from __future__ import annotations

from vae_jax.data import BINARIZATIONS, DATASETS
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.nets import NETS, conv_stages
from vae_jax.nets.activations import ACTIVATIONS
from vae_jax.objectives import OBJECTIVES
from vae_jax.priors import PRIORS

OPTIMIZERS = ("adam", "adamw", "sgd")


class ConfigError(ValueError):
    """A config value that cannot work. The message names field, value and allowed values."""


def _fail(field: str, value, allowed: str):
    raise ConfigError(f"config.{field}={value!r} is invalid: {allowed}")


def _choice(c, field: str, options):
    value = c
    for part in field.split("."):
        value = value[part]
    if value not in options:
        _fail(field, value, f"choose one of {sorted(options)}")


def _positive_int(c, field: str, allow_zero: bool = False):
    value = c
    for part in field.split("."):
        value = value[part]
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        _fail(
            field, value, "must be a " + ("non-negative" if allow_zero else "positive") + " integer"
        )


def validate_config(c) -> None:
    _choice(c, "data.name", DATASETS)
    _choice(c, "data.source", ("auto", "idx", "tfds"))
    _choice(c, "data.binarize", BINARIZATIONS)
    _choice(c, "model.net", NETS)
    _choice(c, "model.likelihood", LIKELIHOODS)
    _choice(c, "model.prior", PRIORS)
    _choice(c, "model.activation", ACTIVATIONS)
    _choice(c, "objective.name", OBJECTIVES)
    _choice(c, "train.optimizer", OPTIMIZERS)
    _choice(c, "train.loss_reduction", ("mean", "sum"))
    for f in (
        "data.batch_size",
        "model.latent_dim",
        "objective.num_samples",
        "train.num_steps",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "train.max_nonfinite_steps",
        "eval.batch_size",
        "eval.num_samples",
        "model.conv_hidden_dim",
        "data.image_size",
        "data.synthetic_size",
        "eval.num_importance_samples",
        "eval.loglik_chunk",
        "eval.loglik_batch_size",
        "eval.fd_num_examples",
        "eval.classifier_steps",
    ):
        _positive_int(c, f)
    val_size = c.data.val_size
    if isinstance(val_size, bool) or not (isinstance(val_size, int) and val_size >= -1):
        _fail("data.val_size", c.data.val_size, "must be -1 (auto), 0 (none) or a positive integer")
    for f in (
        "eval.max_examples",
        "eval.num_figure_examples",
        "eval.loglik_examples",
        "eval.autoencoder_steps",
        "train.eval_every",
    ):
        _positive_int(c, f, allow_zero=True)
    if not all(isinstance(h, int) and h > 0 for h in c.model.hidden_dims):
        _fail("model.hidden_dims", c.model.hidden_dims, "must be a tuple of positive integers")
    if not c.model.conv_channels or not all(
        isinstance(h, int) and h > 0 for h in c.model.conv_channels
    ):
        _fail("model.conv_channels", c.model.conv_channels, "must be positive integers")
    if c.eval.max_examples == 1:
        _fail("eval.max_examples", 1, "must be 0 (all) or at least 2 (spreads need two)")
    if not c.hyper.beta >= 0:
        _fail("hyper.beta", c.hyper.beta, "must be ≥ 0 (β weights the KL term)")
    if not c.train.learning_rate > 0:
        _fail("train.learning_rate", c.train.learning_rate, "must be > 0")
    if not c.train.grad_clip_norm >= 0:
        _fail("train.grad_clip_norm", c.train.grad_clip_norm, "must be ≥ 0 (0 turns it off)")
    if not c.model.gaussian_scale > 0:
        _fail("model.gaussian_scale", c.model.gaussian_scale, "must be > 0")
    if not c.model.min_scale > 0:
        _fail("model.min_scale", c.model.min_scale, "must be > 0")
    if not c.eval.sample_temperature > 0:
        _fail("eval.sample_temperature", c.eval.sample_temperature, "must be > 0")
    if c.train.checkpoint_every % c.train.log_every:
        _fail(
            "train.checkpoint_every",
            c.train.checkpoint_every,
            f"must be a multiple of train.log_every={c.train.log_every}",
        )


def validate_for_data(
    c,
    data_shape: tuple[int, ...],
    num_train: int,
    binary_inputs: bool = True,
    num_test: int | None = None,
) -> None:
    """Checks that need the loaded data set: batch size, image shape, test-set size, and a
    Bernoulli likelihood only on binary inputs."""
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
    if c.data.batch_size > num_train:
        _fail(
            "data.batch_size",
            c.data.batch_size,
            f"larger than the training set ({num_train} examples); use at most {num_train}",
        )
    h, w = data_shape[0], data_shape[1]
    if c.model.net == "conv" and (h != w or conv_stages(h) is None):
        _fail(
            "model.net",
            c.model.net,
            f"the conv net cannot take {h}×{w} images: it needs square images whose side "
            "halves down to at most 8 (e.g. 28, 32, 64); use model.net='mlp'",
        )
