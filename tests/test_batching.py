"""vae_jax.batching: padded fixed-size batches, padding dropped, pytrees concatenated."""

import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.batching import map_padded_batches, pad_batch


def test_pad_batch_appends_zero_rows_and_refuses_oversize():
    x = np.arange(6, dtype=np.uint8).reshape(3, 2)
    padded = pad_batch(x, 5)
    assert padded.shape == (5, 2) and padded.dtype == np.uint8
    np.testing.assert_array_equal(padded[:3], x)
    assert not padded[3:].any()
    with pytest.raises(ValueError, match="larger than batch_size"):
        pad_batch(x, 2)


def test_map_padded_batches_matches_unbatched_for_a_pytree():
    x = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    shapes, indices = [], []

    def fn(i, batch):
        shapes.append(batch.shape)
        indices.append(i)
        return {"sum": batch.sum(-1), "pair": (batch * 2, jnp.full(batch.shape[:1], i))}

    out = map_padded_batches(fn, x, 10)
    assert shapes == [(10, 3)] * 3  # one shape: one compilation under jit
    assert indices == [0, 1, 2]
    np.testing.assert_allclose(out["sum"], x.sum(-1))
    np.testing.assert_allclose(out["pair"][0], x * 2)
    np.testing.assert_array_equal(out["pair"][1], np.repeat([0, 1, 2], [10, 10, 3]))


def test_map_padded_batches_rejects_empty_input():
    with pytest.raises(ValueError, match="empty"):
        map_padded_batches(lambda i, b: b, np.zeros((0, 3)), 4)
