"""Encoders and decoders: shapes for every registered net (also with leading sample axes),
the conv stage rule, the pixel shuffle, and a conv VAE whose loss falls on a tiny run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import read_metrics, tiny_config
from vae_jax.config_lib import base_config
from vae_jax.experiment import run as train_and_evaluate
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.model import build_model
from vae_jax.nets import NETS, conv_stages
from vae_jax.nets.conv import depth_to_space


def _model_config(net, likelihood="bernoulli"):
    mc = base_config().model
    mc.net, mc.likelihood, mc.latent_dim = net, likelihood, 3
    mc.mlp.hidden_dims, mc.conv.channels, mc.conv.hidden_dim = (16,), (4, 8), 16
    return mc


@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_encoder_decoder_shapes(net, shape, likelihood):
    mc = _model_config(net, likelihood)
    model = build_model(mc, shape, jax.random.key(0))
    x = jnp.zeros((5, *shape))
    q = model.posterior(x)
    q = q["z1"] if isinstance(q, dict) else q  # mlp2: the decoder reads the first layer
    assert q.loc.shape == q.log_scale.shape == (5, 3)
    num_params = LIKELIHOODS[likelihood].make(mc[likelihood], None).num_params
    z = q.sample(jax.random.key(1), 2)  # [L, B, D]: decoders take any leading axes
    out = model.decoder(z)
    assert out.shape == (2, 5, *shape[:-1], shape[-1] * num_params)
    np.testing.assert_allclose(out[1], model.decoder(z[1]), rtol=1e-5, atol=1e-6)
    assert model.log_px(x, z).shape == (2, 5)


@pytest.mark.parametrize(
    "side, stages", [(28, 2), (32, 3), (64, 4), (16, 2), (8, 1), (30, None), (7, None)]
)
def test_conv_stages(side, stages):
    assert conv_stages(side) == stages


def test_depth_to_space_places_channel_blocks_in_2x2_cells():
    b, h, w, c = 2, 3, 4, 5
    x = jnp.arange(b * h * w * 4 * c, dtype=jnp.float32).reshape(b, h, w, 4 * c)
    y = np.asarray(depth_to_space(x))
    assert y.shape == (b, 2 * h, 2 * w, c)
    x = np.asarray(x)
    for i in range(h):
        for j in range(w):
            for di in range(2):
                for dj in range(2):
                    block = (2 * di + dj) * c
                    np.testing.assert_array_equal(
                        y[:, 2 * i + di, 2 * j + dj], x[:, i, j, block : block + c]
                    )


def test_conv_vae_loss_falls(tmp_path):
    config = tiny_config(
        **{
            "model.net": "conv",
            "model.conv.channels": (8, 16),
            "model.conv.hidden_dim": 32,
            "train.learning_rate": 1e-2,
            "train.num_steps": 120,
            "train.log_every": 30,
            "train.checkpoint_every": 120,
        }
    )
    summary = train_and_evaluate(config, str(tmp_path))
    losses = [r["loss"] for r in read_metrics(tmp_path)]
    assert len(losses) == 4 and losses[-1] < losses[0] - 50.0, losses  # ~538 -> ~428
    assert np.isfinite(summary["test_elbo_nats"])


def test_mlp_decoder_can_differ_from_the_encoder():
    """Higgins et al.'s dSprites net: a 1200-1200 ReLU encoder and a 1200-1200-1200 tanh
    decoder (small widths here); by default the decoder mirrors the encoder."""
    c = base_config()
    c.model.latent_dim = 3
    c.model.mlp.hidden_dims = (12, 8)
    model = build_model(c.model, (4, 4, 1), jax.random.key(0))
    assert [layer.kernel.shape for layer in model.decoder.hidden] == [(3, 8), (8, 12)]
    c.model.mlp.decoder_hidden_dims = (5, 6, 7)
    c.model.mlp.decoder_activation = "tanh"
    model = build_model(c.model, (4, 4, 1), jax.random.key(0))
    assert [layer.kernel.shape for layer in model.decoder.hidden] == [(3, 5), (5, 6), (6, 7)]
    assert model.decoder.activation == "tanh" and model.encoder.activation == "relu"
    z = jnp.ones((2, 3))
    h = jnp.tanh(model.decoder.hidden[0](z))  # the decoder applies tanh, not relu
    h = jnp.tanh(model.decoder.hidden[1](h))
    want = model.decoder.out(jnp.tanh(model.decoder.hidden[2](h))).reshape(2, 4, 4, 1)
    np.testing.assert_allclose(model.decode(z), want, rtol=1e-6)
    assert NETS["mlp"].describe(c.model.mlp, "mlp") == "mlp (12, 8) relu, decoder (5, 6, 7) tanh"
