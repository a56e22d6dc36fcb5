"""Encoder/decoder registry: name -> build(model_config, data_shape, num_params, rngs).

Each builder returns (encoder, decoder): encoder(x [B, H, W, C]) -> DiagGaussian([B, D]);
decoder(z [..., D]) -> decoder_out [..., H, W, C * num_params].
"""

from __future__ import annotations

from vae_jax.nets.conv import ConvDecoder, ConvEncoder, conv_stages
from vae_jax.nets.mlp import MLPDecoder, MLPEncoder


def build_mlp(mc, data_shape, num_params, rngs):
    out_shape = (*data_shape[:-1], data_shape[-1] * num_params)
    hidden = tuple(mc.hidden_dims)
    return (
        MLPEncoder(data_shape, mc.latent_dim, hidden, mc.activation, rngs=rngs),
        MLPDecoder(out_shape, mc.latent_dim, hidden, mc.activation, rngs=rngs),
    )


def build_conv(mc, data_shape, num_params, rngs):
    out_shape = (*data_shape[:-1], data_shape[-1] * num_params)
    chans, hidden = tuple(mc.conv_channels), mc.conv_hidden_dim
    return (
        ConvEncoder(data_shape, mc.latent_dim, chans, hidden, mc.activation, rngs=rngs),
        ConvDecoder(out_shape, mc.latent_dim, chans, hidden, mc.activation, rngs=rngs),
    )


NETS = {
    "mlp": build_mlp,
    "conv": build_conv,
}

__all__ = ["NETS", "conv_stages"]
