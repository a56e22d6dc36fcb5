"""Data: sources (IDX files, tfds, synthetic, dsprites) -> Dataset -> per-step batch indices."""

from vae_jax.data.errors import DataError
from vae_jax.data.pipeline import BINARIZATIONS, Dataset, batch_indices, load_dataset
from vae_jax.data.sources import CLASS_NAMES, DEBIAN_FASHION_MNIST_DIR

DATASETS = ("fashion_mnist", "mnist", "binarized_mnist", "synthetic", "dsprites")

__all__ = [
    "BINARIZATIONS",
    "CLASS_NAMES",
    "DATASETS",
    "DEBIAN_FASHION_MNIST_DIR",
    "DataError",
    "Dataset",
    "batch_indices",
    "load_dataset",
]
