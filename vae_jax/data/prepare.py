"""Prepare a tfds data set for offline use (needs the internet and `pip install 'vae_jax[tf]'`).

    python -m vae_jax.data.prepare binarized_mnist [--data_dir DIR]

Writes the `array_record` format, the only one `tfds.data_source` reads, so that training
later needs neither TensorFlow nor the network.
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="tfds name, e.g. mnist, binarized_mnist, fashion_mnist")
    parser.add_argument(
        "--data_dir",
        default=os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")),
    )
    args = parser.parse_args(argv)
    import tensorflow_datasets as tfds

    builder = tfds.builder(args.name, data_dir=args.data_dir, file_format="array_record")
    builder.download_and_prepare()
    print(f"prepared {args.name} in {builder.data_dir}")


if __name__ == "__main__":
    main()
