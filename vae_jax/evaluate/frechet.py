"""Fréchet distance between real and generated images in a classifier's feature space.

Heusel et al. (2017), "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", eq. (6): fit Gaussians N(μ_r, Σ_r), N(μ_g, Σ_g) to the features of real and
generated images and report

    d² = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r^{1/2} Σ_g Σ_r^{1/2})^{1/2}),

the squared 2-Wasserstein distance between the two Gaussians. FID uses Inception-v3 pool3
features; Inception weights cannot be downloaded here, so the features come from the small
CNN of feature_classifier.py, trained on the same data set. The numbers are therefore NOT
Inception FID and not comparable with published FID values: they rank models on one data set
evaluated with one cached classifier. The sample-size bias of the estimator (d² of two finite
samples of the same distribution is > 0) is shown by the real-vs-real reference of
`sample_quality`, computed at the same sample sizes.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.apply import apply_batches, batch_fn, generate_batches
from vae_jax.evaluate.feature_classifier import TrainedClassifier, features
from vae_jax.progress import Progress


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [F] and unbiased covariance [F, F] (float64) of features [N, F]."""
    feats = np.asarray(feats, np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need features [N >= 2, F], got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _symmetric(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return 0.5 * (a + a.T)


def _clip_eigenvalues(w: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues of a PSD matrix that are rounding noise: below F·eps·max(w)
    (numpy's matrix_rank tolerance). Without this, a null-space eigenvalue of 1e-16 becomes
    1e-8 under the square root, and FD(x, x) of a singular covariance is ~1e-7, not 0."""
    tol = max(float(w.max(initial=0.0)), 0.0) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """A^{1/2} of a symmetric PSD matrix, from its eigendecomposition."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(_clip_eigenvalues(w))[None, :]) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}) in float64.

    Tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}) is the sum of square roots of the eigenvalues of the
    symmetric PSD matrix Σ1^{1/2} Σ2 Σ1^{1/2} (the same as those of Σ1 Σ2), so both square
    roots are symmetric eigendecompositions, with rounding-noise eigenvalues (negative, or
    below F·eps·max) set to 0. This stays real and finite for the singular covariances of
    few samples or dead ReLU units, where scipy.linalg.sqrtm(Σ1 Σ2) may return complex
    values. The result can be ~−1e−12 for identical inputs (rounding); it is returned as
    computed, not clipped at 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = _symmetric(sigma1), _symmetric(sigma2)
    f = mu1.shape[0]
    if mu1.shape != (f,) or mu2.shape != (f,) or s1.shape != (f, f) or s2.shape != (f, f):
        raise ValueError(f"shapes μ1 {mu1.shape}, Σ1 {s1.shape}, μ2 {mu2.shape}, Σ2 {s2.shape}")
    root1 = _psd_sqrt(s1)
    middle = _symmetric(root1 @ s2 @ root1)  # Σ1^{1/2} Σ2 Σ1^{1/2}, [F, F]
    trace_sqrt = np.sqrt(_clip_eigenvalues(np.linalg.eigvalsh(middle))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


def feature_frechet_distance(
    classifier: TrainedClassifier, real_u8, fake, batch_size: int = 500
) -> float:
    """Fréchet distance between images `real_u8` [N, H, W, C] (uint8) and `fake` [M, H, W, C]
    (uint8 0..255 or float in [0, 1]) in the classifier's feature space."""
    real_stats = gaussian_stats(features(classifier, real_u8, batch_size))
    fake_stats = gaussian_stats(features(classifier, fake, batch_size))
    return frechet_distance(*real_stats, *fake_stats)


@batch_fn
def _sample_batch(model, x, key, num: int, mean: bool):
    del x
    return jnp.clip(model.sample(key, num, mean=mean), 0.0, 1.0)  # [num, H, W, C]


@batch_fn
def _reconstruct_batch(model, x, key):
    del key
    return jnp.clip(model.reconstruct(x), 0.0, 1.0)  # [B, H, W, C]


def _stats_of_batches(classifier, batches: Iterator[np.ndarray], batch_size: int):
    """Gaussian stats of the features of generated image batches (never all held at once)."""
    feats = [features(classifier, b, batch_size) for b in batches]
    return gaussian_stats(np.concatenate(feats))


def sample_quality(
    graphdef,
    params,
    classifier: TrainedClassifier,
    test_images_u8: np.ndarray,
    key: jax.Array,
    *,
    encoder_inputs_u8: np.ndarray | None = None,
    num_samples: int | None = None,
    batch_size: int = 500,
    reference_images_u8: np.ndarray | None = None,
    mean: bool = True,
    progress: str | None = None,
) -> dict:
    """Fréchet distances of model samples and reconstructions to the test images.

    - test_images_u8 [N, ...]: the real side, as the classifier saw its training data (grey
      images before any binarization). encoder_inputs_u8 [N, ...]: the same N test images as
      the model sees them (the fixed binary draw the test ELBO uses); default test_images_u8.
    - fd_samples: FD(test images, E[x|z] for z ~ p(z)), `num_samples` samples (default: as
      many as test images, so that both sides have the same sample-size bias). With a
      Bernoulli decoder E[x|z] is the grey-level mean image, not a binary draw: under
      binarization it estimates the grey intensities x/255, so it is compared with the grey
      test images. `mean=False` compares draws x ~ p(x|z) instead ("decoder_output").
    - fd_reconstructions: FD(test images, E[x | z = μ(x')] where x' is encoder_inputs_u8),
      always the decoder mean.
    - fd_reference_test_vs_val (only with `reference_images_u8`, held-out real images that
      the classifier never trained on, e.g. the validation split): FD(test images,
      min(num_samples, M) of them drawn at random without replacement by `key`), the
      real-vs-real noise floor; at the sample size of fd_samples when the pool holds that
      many images (num_reference_examples says how many were used: the estimator's bias
      grows like 1/m, so a smaller m raises the floor).
    Generated images are clipped to [0, 1]. The key of sample batch i is fold_in(key, i).
    `progress` names the phase for a progress line over its feature passes.
    """
    sample_key, reference_key = jax.random.split(key)
    encoder_inputs_u8 = test_images_u8 if encoder_inputs_u8 is None else encoder_inputs_u8
    if len(encoder_inputs_u8) != len(test_images_u8):
        raise ValueError(
            f"encoder_inputs_u8 ({len(encoder_inputs_u8)}) must hold the same images as "
            f"test_images_u8 ({len(test_images_u8)})"
        )
    n_test = len(test_images_u8)
    num_samples = n_test if num_samples is None else num_samples
    batch_size = max(1, min(batch_size, n_test, num_samples))
    has_reference = reference_images_u8 is not None and len(reference_images_u8) >= 2
    bar = Progress(progress, 4 if has_reference else 3, unit="feature passes") if progress else None
    tick = (lambda done: bar.update(done)) if bar else (lambda done: None)
    real_stats = gaussian_stats(features(classifier, test_images_u8, batch_size))
    tick(1)

    draws = generate_batches(
        _sample_batch, graphdef, params, num_samples, batch_size, sample_key, static=(mean,)
    )
    sample_stats = _stats_of_batches(classifier, draws, batch_size)
    tick(2)

    recons = apply_batches(_reconstruct_batch, graphdef, params, encoder_inputs_u8, batch_size)
    recon_stats = gaussian_stats(features(classifier, recons, batch_size))
    tick(3)

    info = classifier.info
    acc = info.get("test_accuracy")
    feature_dim = int(real_stats[0].shape[0])
    acc_text = f"test accuracy {acc:.1%}" if acc is not None else "test accuracy not measured"
    out = {
        "fd_samples": frechet_distance(*real_stats, *sample_stats),
        "fd_reconstructions": frechet_distance(*real_stats, *recon_stats),
        "num_samples": int(num_samples),
        "num_test_examples": int(n_test),
        "feature_dim": feature_dim,
        "decoder_output": "mean" if mean else "sample",
        "classifier_test_accuracy": acc,
        "note": (
            "Fréchet distance in the features of a small CNN classifier trained on "
            f"{info.get('dataset', 'unknown')} ({acc_text}); not Inception FID: not comparable "
            "with published FID numbers"
        ),
    }
    if min(n_test, num_samples) <= feature_dim:
        out["small_sample_note"] = (
            f"{min(n_test, num_samples)} images for {feature_dim} feature dimensions: the "
            "covariances are singular and the distances strongly biased; use more images "
            "(eval.fd_num_examples)"
        )
    if has_reference:
        m = min(num_samples, len(reference_images_u8))
        pick = jax.random.choice(reference_key, len(reference_images_u8), (m,), replace=False)
        reference = np.asarray(reference_images_u8)[np.sort(np.asarray(pick))]
        reference_stats = gaussian_stats(features(classifier, reference, batch_size))
        out["fd_reference_test_vs_val"] = frechet_distance(*real_stats, *reference_stats)
        out["num_reference_examples"] = int(m)
        out["num_reference_pool"] = int(len(reference_images_u8))
        tick(4)
    return out
