"""Encoder/decoder registry: name -> Component (vae_jax/components.py).

`make(section, spec)` returns (encoder, decoder): encoder(x [B, H, W, C]) ->
DiagGaussian([B, D]); decoder(z [..., D]) -> decoder_out [..., H, W, C * num_params].
"""

from __future__ import annotations

from vae_jax.nets import conv, mlp
from vae_jax.nets.conv import conv_stages

NETS = {
    "mlp": mlp.COMPONENT,
    "conv": conv.COMPONENT,
}

__all__ = ["NETS", "conv_stages"]
