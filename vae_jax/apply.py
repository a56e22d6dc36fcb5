"""One way to run a trained model over data: jit(merge → scale → fn) over padded batches.

    @batch_fn
    def _encode(model, x, key):                      # x in [0, 1], model in eval mode
        q = model.posterior(x)
        return q.loc                                 # any pytree with a leading batch axis

    codes = apply_batches(_encode, graphdef, state, images_u8, batch_size=500)

`batch_fn` turns fn(model, x, key, *static) into a function jitted once per graphdef and
static values: the model is merged from (graphdef, state) in eval mode (BatchNorm's running
statistics), uint8 images are scaled to [0, 1] (floats are taken as already scaled; None
passes through, for generators), matmuls run at "highest" precision (full float32 on
every backend), and the trailing arguments are static (shapes, flags).
`apply_batches` maps it over fixed-size padded batches (vae_jax/batching.py: one
compilation, padding dropped), folding the batch index into the key; `generate_batches`
does the same for outputs that need no input (samples), one batch at a time.
`state` is everything `nnx.merge` needs after the graphdef: one State, or several.

A sweep group evaluates all its members in one program: pass `Members(stacked_state)`,
the members' variables stacked along a leading axis (vae_jax/sweep), with one key per
member ([M] key array). `f` is then vmapped over (state, key) with the batch shared, and
every output leaf gains a leading member axis: [M, N, ...]. Member m's values are those of
`f` on member m alone, up to the order of floating-point sums.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.batching import map_padded_batches
from vae_jax.cpu_tuning import tuned_jit
from vae_jax.data.transforms import to_unit_interval
from vae_jax.mesh import data_mesh_of, rows_on
from vae_jax.model import merge_model


class Members(NamedTuple):
    """Several models' variables (one graphdef) stacked along a leading member axis."""

    state: Any


def batch_fn(fn=None, *, tuned: bool = False):
    """Decorator (optionally `@batch_fn(tuned=True)`: XLA:CPU options of vae_jax.cpu_tuning).

    fn(model, x, key, *static) -> f(graphdef, state, x, key, *static), jitted, with the
    graphdef and the static arguments static."""
    if fn is None:
        return lambda f: batch_fn(f, tuned=tuned)
    num_static = len(inspect.signature(fn).parameters) - 3

    def call(graphdef, state, x, key, *static):
        states = state if isinstance(state, tuple) else (state,)
        model = merge_model(graphdef, *states, train=False)
        if x is not None and x.dtype == jnp.uint8:
            x = to_unit_interval(x)
        # Evaluation at full float32 precision on every backend (no TF32, no bf16 passes),
        # so that reported nats do not depend on the hardware.
        with jax.default_matmul_precision("highest"):
            return fn(model, x, key, *static)

    def over_members(graphdef, state, x, keys, *static):
        # Batch rows first, members second ([B, M, ...]), so that padded batches
        # concatenate along axis 0 like a single model's; apply_batches moves M first.
        one = lambda s, k: call(graphdef, s, x, k, *static)  # noqa: E731
        return jax.vmap(one, in_axes=(0, None if keys is None else 0), out_axes=1)(state, keys)

    call.__name__ = call.__qualname__ = fn.__name__
    call.__doc__ = fn.__doc__
    static_argnums = (0, *range(4, 4 + num_static))
    jit = tuned_jit if tuned else jax.jit
    jitted = jit(call, static_argnums=static_argnums)
    jitted.over_members = jit(over_members, static_argnums=static_argnums)
    return jitted


def apply_batches(
    f,
    graphdef,
    state,
    images: np.ndarray,
    batch_size: int,
    *,
    key: jax.Array | None = None,
    static: tuple = (),
    progress: str | None = None,
):
    """f over `images` [N, ...] in padded batches of `batch_size`; batch i gets the key
    fold_in(key, i) (None stays None). Returns f's pytree with [N, ...] numpy leaves.

    With `state` a Members (and `key` one key per member, [M]): f runs for every member in
    one program, member m's batch i with fold_in(key[m], i); leaves are [M, N, ...].

    With `state` on a device mesh with a "data" axis (vae_jax.mesh: a replicated
    TrainState's variables), every batch's rows are split over that axis, as in training;
    `batch_size` is rounded up to a multiple of its device count (padding, dropped), and
    the numbers are those of that batch size on one device."""
    mesh = data_mesh_of(state.state if isinstance(state, Members) else state)
    place = jnp.asarray
    if mesh is not None:
        batch_size, rows = rows_on(mesh, batch_size)
        place = lambda x: jax.device_put(x, rows)  # noqa: E731
    if isinstance(state, Members):
        fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
        out = map_padded_batches(
            lambda i, x: f.over_members(
                graphdef, state.state, x, None if key is None else fold(key, i), *static
            ),
            images,
            batch_size,
            progress=progress,
            place=place,
        )
        return jax.tree.map(lambda v: np.moveaxis(v, 1, 0), out)
    return map_padded_batches(
        lambda i, x: f(
            graphdef, state, x, None if key is None else jax.random.fold_in(key, i), *static
        ),
        images,
        batch_size,
        progress=progress,
        place=place,
    )


def generate_batches(
    f, graphdef, state, total: int, batch_size: int, key: jax.Array, static: tuple = ()
) -> Iterator[np.ndarray]:
    """f(model, None, fold_in(key, i), batch_size, *static) for the batches i covering
    `total` items, as numpy arrays, the last one trimmed. Yields them one at a time."""
    for i, start in enumerate(range(0, total, batch_size)):
        out = f(graphdef, state, None, jax.random.fold_in(key, i), batch_size, *static)
        yield np.asarray(out)[: min(batch_size, total - start)]
