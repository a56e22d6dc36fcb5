"""Labels that must not lie: what each likelihood's numbers are on each kind of data, what
the encoder saw under each binarization, and a tiny data set evaluated end to end."""

import json
import os

import jax
import pytest

from tests.helpers import tiny_config
from vae_jax.config_check import ConfigError
from vae_jax.data import load_dataset
from vae_jax.evaluate.suite import (
    classifier_cache_path,
    encoded_description,
    likelihood_kind,
    log_likelihood_summary,
    summary_lines,
)
from vae_jax.experiment import run
from vae_jax.figures.suite import write_figures


@pytest.mark.parametrize(
    ("likelihood", "binarize", "kind"),
    [
        ("bernoulli", "dynamic", "discrete"),
        ("bernoulli", "none", "unnormalized"),
        ("gaussian", "none", "density"),
        ("continuous_bernoulli", "none", "density"),
        ("gaussian", "threshold", "density_at_discrete_points"),
        ("continuous_bernoulli", "static", "density_at_discrete_points"),
    ],
)
def test_likelihood_kind(likelihood, binarize, kind):
    config = tiny_config(**{"model.likelihood": likelihood, "data.binarize": binarize})
    assert likelihood_kind(config, load_dataset(config.data)) == kind


@pytest.mark.parametrize(
    ("binarize", "phrase"),
    [
        ("dynamic", "fixed Bernoulli draw"),
        ("static", "fixed Bernoulli draw"),
        ("threshold", "thresholded at 0.5"),
        ("none", "grey intensities"),
    ],
)
def test_encoded_inputs_are_named_by_their_binarization(binarize, phrase):
    ds = load_dataset(tiny_config(**{"data.binarize": binarize}).data)
    assert phrase in encoded_description(ds)


def test_a_density_on_binary_pixels_reports_no_bits_per_dim(tmp_path, capsys):
    config = tiny_config(**{"model.likelihood": "gaussian", "train.num_steps": 20})
    summary = run(config, str(tmp_path))
    assert summary["likelihood_kind"] == "density_at_discrete_points"
    assert (
        summary["test_bits_per_dim"] is None
        and "not a log-probability" in (summary["likelihood_note"])
    )
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("test ELBO"))
    assert line.endswith("[a density at binary points, not a log-probability]")


def test_a_tiny_data_set_evaluates_end_to_end(tmp_path):
    """8 test images (fewer than the 16 the interpolation figure would take): every figure
    adapts, and the I(x;z) bounds use the 8 posteriors."""
    config = tiny_config(
        **{
            "data.synthetic_size": 40,
            "data.val_size": 8,
            "data.batch_size": 8,
            "train.num_steps": 20,
            "eval.diagnostics": True,
            "eval.sample_quality": False,
            "eval.loglik_examples": 8,
            "eval.loglik_batch_size": 8,
            "eval.num_importance_samples": 10,
            "eval.loglik_chunk": 10,
            "eval.num_figure_examples": 4,
        }
    )
    run(config, str(tmp_path))
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["collapse"]["mutual_info"]["num_examples"] == 8
    assert (tmp_path / "interpolation_slerp.png").exists() and (tmp_path / "report.html").exists()
    assert all(isinstance(line, str) for line in summary_lines(results))


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"eval.max_examples": 1}, "config.eval.max_examples=1 is invalid"),
        ({"data.synthetic_size": 9, "data.val_size": 1, "data.batch_size": 4}, "holds 1 example"),
        ({"data.val_size": True}, "config.data.val_size=True is invalid"),
        ({"eval.fd_num_examples": 1}, "config.eval.fd_num_examples=1 is invalid"),
    ],
)
def test_too_few_examples_to_evaluate_are_refused(tmp_path, overrides, phrase):
    with pytest.raises(ConfigError, match=phrase):
        run(tiny_config(**overrides), str(tmp_path))


def _tiny_model(config):
    from vae_jax.model import build_model, full_state, split_model

    graphdef, params, rest = split_model(build_model(config.model, (28, 28, 1), jax.random.key(0)))
    return graphdef, full_state(params, rest)


def test_an_unnormalized_log_likelihood_has_no_nll_or_bits(tmp_path):
    config = tiny_config(
        **{"data.binarize": "none", "model.allow_unnormalized": True, "eval.loglik_examples": 8}
    )
    ds = load_dataset(config.data)
    out = log_likelihood_summary(config, ds, *_tiny_model(config), num_samples=4)
    assert out["nll_nats"] is None and out["bits_per_dim"] is None
    assert "not a normalised density" in out["likelihood_note"]


def test_traversal_caption_under_full_collapse(tmp_path):
    config = tiny_config(**{"eval.num_figure_examples": 2})
    ds = load_dataset(config.data)
    collapse = {"kl_per_dim": [0.004, 0.001, 0.003, 0.002], "collapsed_dims": [0, 1, 2, 3]}
    figs = dict(write_figures(config, str(tmp_path), ds, *_tiny_model(config), collapse))
    caption = figs[str(tmp_path / "traversals.png")]
    assert "no dimension is active, so the 3 with the largest KL are shown" in caption
    assert "All are inactive" in caption and "active dimension (" not in caption


def test_the_classifier_cache_is_per_training_split(tmp_path):
    a = tiny_config(**{"eval.classifier_dir": str(tmp_path)})
    b = tiny_config(**{"eval.classifier_dir": str(tmp_path), "data.split_seed": 1})
    path_a = classifier_cache_path(a, load_dataset(a.data))
    path_b = classifier_cache_path(b, load_dataset(b.data))
    assert path_a != path_b and os.path.dirname(path_a) == str(tmp_path)
    assert os.path.basename(path_a).startswith("classifier_synthetic_200steps_")
