"""The disentanglement metrics of trained models (evaluate/disentangle/trained.py): the
representation is the encoder mean of the first layer, members scored together get their
own numbers, sizes follow `points`, and `latent_factors` names the factor a dimension
follows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vae_jax.apply import Members
from vae_jax.config_lib import base_config
from vae_jax.data import dsprites
from vae_jax.evaluate.disentangle import trained
from vae_jax.evaluate.suite import summary_of
from vae_jax.model import build_model
from vae_jax.sweep.loop import stack


def _model(seed):
    c = base_config()
    c.model.latent_dim = 3
    c.model.mlp.hidden_dims = (16,)
    return nnx.split(build_model(c.model, (64, 64, 1), jax.random.key(seed)))


@pytest.fixture(scope="module")
def data():
    return dsprites.procedural()


def test_the_representation_is_the_first_layer_mean(data):
    graphdef, state = _model(0)
    images = data.observations(data.sample_factors(7, np.random.default_rng(0)))
    codes = trained.representation_fn(graphdef, state)(images)
    model = nnx.merge(graphdef, state)
    want = model.posterior(jnp.asarray(images, jnp.float32) / 255.0).loc
    np.testing.assert_allclose(codes, want, rtol=1e-5, atol=1e-6)


def test_members_scored_together_get_their_own_scores(data):
    """Two random models: stacked (one encoding program) = each alone, and the sizes
    recorded are the scaled protocol's."""
    (graphdef, s0), (_, s1) = _model(0), _model(1)
    kw = dict(seed=3, points=200, dci_trees=5)
    alone = [trained.score_models(data, graphdef, s, **kw)[0] for s in (s0, s1)]
    together = trained.score_models(data, graphdef, Members(stack([s0, s1])), members=2, **kw)
    for a, b in zip(alone, together, strict=True):
        for name in trained.METRIC_NAMES:
            for key, value in a[name].items():
                assert b[name][key] == pytest.approx(value, abs=0.011), (name, key)
        assert [f["factor"] for f in a["latent_factors"]] == [
            f["factor"] for f in b["latent_factors"]
        ]
    assert alone[0]["mig"] != alone[1]["mig"]  # the two models differ
    protocol = alone[0]["protocol"]
    assert protocol["beta_vae"] == {"batch_size": 64, "num_train": 200, "num_eval": 100}
    assert protocol["dci"]["trees"] == 5
    assert trained.headline(alone[0]).keys() == set(trained.METRIC_NAMES)
    assert trained.score_models(data, graphdef, s0, **kw)[0] == alone[0]  # repeatable


def test_latent_factors_names_the_factor_a_code_follows():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 10, size=(2000, 3))
    codes = np.stack([factors[:, 2] + 0.1 * rng.normal(size=2000), rng.normal(size=2000)], 1)
    out = trained.latent_factors(codes, factors, ("a", "b", "c"))
    assert out[0]["factor"] == "c" and out[0]["normalized_mi"] > 0.8
    assert out[1]["normalized_mi"] < 0.05  # noise follows nothing


def test_the_protocol_is_named_next_to_the_numbers():
    assert trained.protocol_name(0, 100) == "disentanglement_lib protocol"
    assert trained.protocol_name(2000, 20) == (
        "reduced protocol: 2000 training and 1000 evaluation points, DCI with 20 trees"
    )
    result = {name: {key: 0.5} for name, (key, _) in trained.HEADLINES.items()}
    result["protocol_name"] = trained.protocol_name(0, 100)
    summary = summary_of(
        {
            "run": {"platform": {}, "execution": {}},
            "elbo": {},
            "disentanglement": result,
        }
    )
    assert summary["disentanglement"] == {name: 0.5 for name in trained.METRIC_NAMES}
    assert summary["disentanglement_protocol"] == "disentanglement_lib protocol"


def test_protocol_sizes_default_to_disentanglement_lib():
    assert trained.protocol_sizes(0) == {name: {} for name in trained.METRIC_NAMES}
    assert trained.protocol_sizes(1000)["factor_vae"] == {
        "num_variance_estimate": 1000,
        "num_train": 1000,
        "num_eval": 500,
    }
