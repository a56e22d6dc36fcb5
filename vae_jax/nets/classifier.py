"""The small CNN whose penultimate layer is the feature space of the Fréchet distance.

Two stride-2 3×3 convolutions (32, 64 channels) → dense 128 ("features", after its ReLU) →
logits. Trained on a data set's own training split by vae_jax/evaluate/feature_classifier.py.
"""

from __future__ import annotations

import jax
from flax import nnx

ARCHITECTURE = "conv3x3/2(32)-conv3x3/2(64)-dense(128, features)-dense(K)"


class FeatureClassifier(nnx.Module):
    """x [B, H, W, C] in [0, 1] -> logits [B, K]; `features(x)` -> [B, feature_dim]."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        channels: tuple[int, int] = (32, 64),
        feature_dim: int = 128,
        rngs: nnx.Rngs,
    ):
        h, w, c = input_shape
        self.conv1 = nnx.Conv(c, channels[0], (3, 3), strides=2, padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(
            channels[0], channels[1], (3, 3), strides=2, padding="SAME", rngs=rngs
        )
        side_h, side_w = ((h + 1) // 2 + 1) // 2, ((w + 1) // 2 + 1) // 2  # ceil twice: SAME, /2
        self.dense = nnx.Linear(side_h * side_w * channels[1], feature_dim, rngs=rngs)
        self.out = nnx.Linear(feature_dim, num_classes, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.conv1(x))  # [B, H/2, W/2, 32]
        h = jax.nn.relu(self.conv2(h))  # [B, H/4, W/4, 64]
        return jax.nn.relu(self.dense(h.reshape(h.shape[0], -1)))  # [B, F]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.features(x))  # [B, K]


def build(input_shape, num_classes: int, key: jax.Array) -> FeatureClassifier:
    return FeatureClassifier(tuple(input_shape), num_classes, rngs=nnx.Rngs(params=key))
