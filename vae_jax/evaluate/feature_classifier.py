"""The feature classifier of the Fréchet distance: trained once per data set, then cached.

Heusel et al. (2017), "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", define FID in the pool3 features of an Inception-v3 network trained on
ImageNet. Inception weights cannot be downloaded here, and ImageNet features are a poor fit
for 28×28 grey images anyway, so we follow the common substitute for small data sets: a
classifier (vae_jax/nets/classifier.py) trained on the data set's own TRAIN split, whose
128-unit dense layer gives the features. Distances in this space are NOT Inception FID and
are not comparable with published FID numbers; they only compare models on the same data
set evaluated with the same cached classifier.

Training uses the project's own step (vae_jax/step.py) with a softmax cross-entropy
Objective: Adam with a cosine-decayed learning rate, batches drawn with replacement, the
batch of step s from `fold_in(key, s)`. `get_classifier` caches the params as an orbax
checkpoint with a JSON record (data fingerprint, settings, accuracy) written after it: a
record that is missing, stale or unreadable, or a checkpoint that does not restore, means
the classifier is retrained and the cache rewritten. The cache is derived data.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from vae_jax import platform
from vae_jax.apply import apply_batches, batch_fn
from vae_jax.checkpoint import Checkpointer
from vae_jax.cpu_tuning import cpu_compiler_options
from vae_jax.data.pipeline import fingerprint
from vae_jax.files import write_json_atomic
from vae_jax.hyper import Hyper
from vae_jax.model import split_model
from vae_jax.nets import classifier as classifier_net
from vae_jax.objectives import Objective
from vae_jax.progress import Progress
from vae_jax.state import init_state, make_optimizer
from vae_jax.step import make_chunk_runner, make_train_step

CACHE_FORMAT = 2
DEFAULT_NUM_STEPS = 1000
DEFAULT_BATCH_SIZE = 128
DEFAULT_LEARNING_RATE = 3e-3
_CHUNK = 100  # steps per call of the chunk runner (one progress update each)


class TrainedClassifier(NamedTuple):
    """A classifier at the boundary: graphdef + params, and its JSON record `info`."""

    graphdef: nnx.GraphDef
    params: nnx.State
    info: dict  # dataset, accuracy, settings, fingerprint (see get_classifier)


def _check_labels(labels: np.ndarray, num_images: int) -> int:
    """Number of classes; ValueError for unlabelled (-1) or malformed labels."""
    labels = np.asarray(labels)
    if labels.shape != (num_images,):
        raise ValueError(f"labels have shape {labels.shape}, expected ({num_images},)")
    if num_images == 0 or np.all(labels < 0):
        raise ValueError(
            "the feature classifier needs class labels, but this data set is unlabelled "
            "(all labels are -1, e.g. binarized_mnist); the Fréchet-distance metric cannot be "
            "computed for it"
        )
    if np.any(labels < 0):
        raise ValueError(f"{int(np.sum(labels < 0))} of {num_images} labels are negative")
    return int(labels.max()) + 1


def classification_objective() -> Objective:
    """Softmax cross-entropy of batch["label"] given batch["x"], averaged over the batch."""

    def loss(model, batch, key, ctx):
        del key, ctx
        logits = model(batch["x"])  # [B, K]
        value = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        return value, {"loss": value}

    return Objective(loss, bound=False, deterministic=True, progress=())


def _optimizer(num_steps: int, learning_rate: float) -> optax.GradientTransformation:
    settings = dict(optimizer="adam", learning_rate=learning_rate, lr_schedule="cosine")
    settings.update(num_steps=num_steps, grad_clip_norm=0.0)
    return make_optimizer(ml_collections.ConfigDict(settings))


def train_classifier(
    images_u8: np.ndarray,
    labels: np.ndarray,
    key: jax.Array,
    *,
    num_steps: int = DEFAULT_NUM_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    learning_rate: float = DEFAULT_LEARNING_RATE,
) -> tuple[nnx.GraphDef, nnx.State, dict]:
    """Train on (images [N, H, W, C] uint8, labels [N]); returns (graphdef, params, stats).

    On the CPU one jitted step per call without YNN fusions (a convolution inside a scanned
    loop runs about 10× slower than at top level there); on accelerators a fused scan.
    """
    num_classes = _check_labels(labels, len(images_u8))
    init_key, train_key = jax.random.split(key)
    model = classifier_net.build(images_u8.shape[1:], num_classes, init_key)
    graphdef, params, model_state = split_model(model)
    tx = _optimizer(num_steps, learning_rate)
    state = init_state(params, model_state, tx)
    step = make_train_step(
        graphdef,
        classification_objective(),
        tx,
        matmul_precision="highest",
        guard=platform.guard(),
    )
    # A conv net: one dispatch per step without YNN fusions on the CPU, where convolutions
    # inside a scanned loop are slow; fused on accelerators.
    on_cpu = jax.default_backend() == "cpu"
    run = make_chunk_runner(
        step,
        fuse_steps=not on_cpu,
        compiler_options=cpu_compiler_options() if on_cpu else None,
        length=_CHUNK,
    )
    data = jax.device_put({"image": images_u8, "label": np.asarray(labels, np.int32)})
    draw = lambda s: jax.random.randint(
        jax.random.fold_in(train_key, s), (batch_size,), 0, len(images_u8)
    )
    indices = jax.vmap(draw)(jnp.arange(num_steps))  # [num_steps, B], with replacement
    t0, losses = time.time(), []
    bar = Progress("feature classifier (first use; cached after)", num_steps, unit="steps")
    for start in range(0, num_steps, _CHUNK):
        state, metrics = run(state, data, indices[start : start + _CHUNK], train_key, Hyper())
        losses.append(float(metrics["loss"]))
        bar.update(min(start + _CHUNK, num_steps))
    stats = {"train_seconds": time.time() - t0, "final_train_loss": losses[-1]}
    if not np.isfinite(stats["final_train_loss"]) or int(state.nonfinite_steps):
        raise RuntimeError(f"classifier training diverged: {stats}; lower the learning rate")
    return graphdef, state.params, stats


@batch_fn
def _features_batch(model, x, key):
    del key
    return model.features(x)  # [B, F]


@batch_fn
def _predict_batch(model, x, key):
    del key
    return jnp.argmax(model(x), axis=-1)  # [B]


def features(classifier: TrainedClassifier, images, batch_size: int = 500) -> np.ndarray:
    """Penultimate-layer features [N, F] (after the ReLU) of images [N, H, W, C]: uint8 in
    0..255, or float already in [0, 1]."""
    batch_size = max(1, min(batch_size, len(images)))
    return apply_batches(
        _features_batch, classifier.graphdef, classifier.params, images, batch_size
    )


def classifier_accuracy(
    classifier: TrainedClassifier, images_u8, labels, batch_size: int = 500
) -> float:
    """Fraction of `images_u8` [N, H, W, C] whose predicted class equals `labels` [N]."""
    batch_size = max(1, min(batch_size, len(images_u8)))
    pred = apply_batches(
        _predict_batch, classifier.graphdef, classifier.params, images_u8, batch_size
    )
    return float(np.mean(pred == np.asarray(labels)))


def data_fingerprint(images_u8: np.ndarray, labels: np.ndarray) -> str:
    """sha1 of the shapes, dtypes and bytes of (images, labels): the cache is per data set."""
    return fingerprint(images_u8, labels)


def record_path(cache_dir: str) -> str:
    """The JSON record that goes with the checkpoint in `cache_dir`."""
    return os.path.join(cache_dir, "record.json")


def save_classifier(cache_dir: str, classifier: TrainedClassifier) -> None:
    """The params as an orbax checkpoint in cache_dir, then the JSON record (last, so a crash
    between the two leaves no record and the cache is simply rebuilt)."""
    steps = int(classifier.info["settings"]["num_steps"])
    ckpt = Checkpointer(cache_dir, max_to_keep=1)
    try:
        # Host (numpy) arrays: every process of a multi-host run holds its own copy of the
        # classifier, which orbax, called by all of them, writes once.
        ckpt.save(steps, {"params": jax.device_get(classifier.params)})
    finally:
        ckpt.close()
    write_json_atomic(record_path(cache_dir), classifier.info)


def load_classifier(cache_dir: str) -> TrainedClassifier:
    """Rebuild the classifier from `cache_dir`; raises (OSError, ValueError, ...) if unusable."""
    with open(record_path(cache_dir)) as f:
        info = json.load(f)
    if info.get("format") != CACHE_FORMAT:
        raise ValueError(f"cache format {info.get('format')} != {CACHE_FORMAT}")
    template = nnx.eval_shape(
        lambda: classifier_net.build(info["input_shape"], info["num_classes"], jax.random.key(0))
    )
    graphdef, abstract, _ = split_model(template)
    ckpt = Checkpointer(cache_dir, max_to_keep=1)
    try:
        step = ckpt.latest_step()
        if step is None:
            raise ValueError("the cache holds no checkpoint")
        params = ckpt.restore({"params": abstract}, step)["params"]
    finally:
        ckpt.close()
    return TrainedClassifier(graphdef, params, info)


def get_classifier(
    images_u8: np.ndarray,
    labels: np.ndarray,
    *,
    cache_path: str,
    key: jax.Array,
    num_steps: int = DEFAULT_NUM_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    dataset_name: str = "unknown",
    test_images_u8: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> TrainedClassifier:
    """Load the classifier cached in the folder `cache_path`, or train and cache it.

    Train on the TRAIN split (images [N, H, W, C] as given: uint8 0..255, binary data as
    0/255). The cache is used only when its record matches the data fingerprint and the
    training settings (num_steps, batch_size, learning_rate, key); otherwise the classifier
    is retrained and the cache overwritten, with a warning naming the folder. With test
    data, `info["test_accuracy"]` is measured on it (also after a cache load).

    Raises ValueError for unlabelled data (all labels -1): the caller skips the metric.
    """
    images_u8, labels = np.asarray(images_u8), np.asarray(labels)
    num_classes = _check_labels(labels, len(images_u8))
    settings = {
        "num_steps": int(num_steps),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "key_data": np.asarray(jax.random.key_data(key)).ravel().tolist(),
        "architecture": classifier_net.ARCHITECTURE,
    }
    fingerprint = data_fingerprint(images_u8, labels)

    classifier = None
    if os.path.exists(cache_path):
        try:
            classifier = load_classifier(cache_path)
        except Exception as err:  # any unreadable cache is rebuilt: it is derived data
            warnings.warn(
                f"classifier cache {cache_path} is unreadable ({type(err).__name__}: {err}); "
                "retraining and overwriting it",
                stacklevel=2,
            )
        if classifier is not None and (
            classifier.info.get("fingerprint") != fingerprint
            or classifier.info.get("settings") != settings
        ):
            warnings.warn(
                f"classifier cache {cache_path} was trained on other data or settings; "
                "retraining and overwriting it",
                stacklevel=2,
            )
            classifier = None
        if classifier is None:
            shutil.rmtree(cache_path, ignore_errors=True)

    if classifier is None:
        graphdef, params, stats = train_classifier(
            images_u8,
            labels,
            key,
            num_steps=num_steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
        )
        info = {
            "format": CACHE_FORMAT,
            "dataset": dataset_name,
            "fingerprint": fingerprint,
            "settings": settings,
            "input_shape": list(images_u8.shape[1:]),
            "num_classes": num_classes,
            "num_train_examples": len(images_u8),
            **stats,
            "test_accuracy": None,
            "note": "small CNN trained on this data set; its features are not Inception's",
        }
        classifier = TrainedClassifier(graphdef, params, info)
        if test_images_u8 is not None:
            acc = classifier_accuracy(classifier, test_images_u8, test_labels)
            info.update(test_accuracy=acc, num_test_examples=len(test_images_u8))
        save_classifier(cache_path, classifier)
    elif test_images_u8 is not None:
        acc = classifier_accuracy(classifier, test_images_u8, test_labels)
        classifier.info.update(test_accuracy=acc, num_test_examples=len(test_images_u8))
    classifier.info["dataset"] = dataset_name
    return classifier
