"""Activation functions by config name (kept as names so modules stay hashable)."""

import jax

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "tanh": jax.numpy.tanh,
    "elu": jax.nn.elu,
}
