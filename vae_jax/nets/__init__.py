"""Encoder/decoder registry: name -> Component (vae_jax/components.py).

`make(section, spec)` returns (encoder, decoder): encoder(x [B, H, W, C]) ->
DiagGaussian([B, D]); decoder(z [..., D]) -> decoder_out [..., H, W, C * num_params].
A net with the trait "hierarchical" (mlp2: two stochastic layers) returns a tree of layers
and the hooks of model.py's hierarchical model; its prior is over the top layer, whose size
the decoder names (`top_latent_dim`).
"""

from __future__ import annotations

from vae_jax.nets import conv, mlp, mlp2
from vae_jax.nets.conv import conv_stages

NETS = {
    "mlp": mlp.COMPONENT,
    "conv": conv.COMPONENT,
    "mlp2": mlp2.COMPONENT,
}

__all__ = ["NETS", "conv_stages"]
