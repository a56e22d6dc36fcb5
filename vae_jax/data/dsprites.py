"""dSprites (Matthey et al. 2017), generated procedurally, and a lazy view of its images.

The factor grid is the published one, in the published order (deepmind/dsprites-dataset):
latents_sizes [1, 3, 6, 40, 32, 32] for (colour, shape, scale, orientation, posX, posY);
shapes square, ellipse, heart; scale linspace(0.5, 1, 6); orientation linspace(0, 2π, 40)
(0 and 2π both present, with identical images); posX, posY linspace(0, 1, 32); image
index = row-major with posY fastest (latents_bases [737280, 245760, 40960, 1024, 32, 1]).
Colour is constant, so the factors here are the other five (as in disentanglement_lib):
`factor_sizes = (3, 6, 40, 32, 32)`, and the flat index is that of the published file.

The pixel geometry of the original is not published, so this generator is dSprites-like
(same grid, order and binary 64×64 images), not bit-identical. The geometry used here
(GEOMETRY, part of the fingerprint):
- a shape of scale s has half-size R = 5·s pixels: the scale-1 square is 10×10 pixels
  (a side of 64/6.4, about the original's); the ellipse has semi-axes R and R/2 (long
  axis horizontal at orientation 0); the heart is the curve (x² + y² − 1)³ − x²y³ ≤ 0
  scaled to a width of 2R (as wide as the square), point down at orientation 0, centred
  on its bounding box;
- orientation θ turns the shape counter-clockwise (as seen) about its centre;
- each of the 720 base sprites (shape × scale × orientation) is rendered once on an 18×18
  canvas with 8×8 supersampling per pixel, a pixel being on when at least half of its
  samples are inside (coverage ≥ 0.5). The sprite's centre is a quarter pixel off a pixel
  corner (canvas coordinate 8.75 on both axes, pixel i spanning [i, i + 1)), so that no
  axis-aligned edge falls on a pixel's middle: the squares are exactly 5, 6, 7, 8, 9 and 10
  pixels wide, with no coverage ties;
- position p ∈ {0..31} puts the canvas at pixel offset 8 + p: posX moves the sprite right
  (columns), posY down (rows), 1 pixel per step. The sprite's centre goes from 16.75 to
  47.75 (the image spans [0, 64); a quarter pixel right of / below symmetric). The largest
  sprite reaches 7.1 pixels from its centre (the rotated scale-1 square), inside the
  canvas (8.75 to 9.25 pixels from it), and at every position the canvas (pixels 8 + p to
  25 + p) lies inside the frame: every image is an integer translation of its base
  sprite, never clipped, and no sprite ever leaves the image.

Images are uint8 in {0, 255} (the pipeline's convention for binary images), shape
[64, 64, 1]. The base sprites (720 × 95 × 95 padded, 6.5 MB) are rendered once per process
(under a second) and kept in memory; an image batch is cut from them by integer
translation (numpy fancy indexing into a strided window view: about 1 ms for 256 images
on a CPU core), so no code here ever builds the 737,280 images (2.8 GiB as uint8).

`SpriteImages` is the lazy [N, 64, 64, 1] uint8 training split the pipeline holds: an index
array into the 737,280 images, rendered only when indexed (refusing more than
MAX_RENDER images at once), never materialised as a whole.

Splits (`split_indices`): dSprites has no test split. Test = a fixed random subset of
10,000 images and validation = another 10,000 (both materialised), train = all the rest
(lazy), drawn with `data.split_seed`. Test images come from the same factor grid as the
training images (no held-out factor combinations), as in the disentanglement literature,
where models train on all of dSprites. `data.source=tfds` reads the original images
instead (`load_tfds`), put in the published index order, with the same splits.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from vae_jax.data.errors import DataError
from vae_jax.data.ground_truth import uniform_factors

SHAPES = ("square", "ellipse", "heart")
FACTOR_SIZES = (3, 6, 40, 32, 32)
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
# The published latents: colour (one value), then the five factors above.
LATENTS_SIZES = (1, *FACTOR_SIZES)
LATENTS_BASES = (737_280, 245_760, 40_960, 1024, 32, 1)
NUM_IMAGES = 737_280
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

IMAGE_SIZE = 64
CANVAS = 18  # pixels, the base sprite's canvas
CENTRE = 8.75  # the sprite's centre in canvas coordinates (both axes)
ORIGIN = 8  # the canvas's top-left pixel in the image at position 0
HALF_SIZE = 5.0  # pixels, R at scale 1: the scale-1 square is 10×10
ELLIPSE_ASPECT = 0.5  # minor / major semi-axis
SUPERSAMPLE = 8  # samples per pixel side
NUM_POSITIONS = 32
PAD = NUM_POSITIONS - 1  # zeros around the image in the padded base sprites
GEOMETRY = (
    f"canvas {CANVAS} at {ORIGIN} + pos, centre {CENTRE:g}, R = {HALF_SIZE:g}·scale px, "
    f"ellipse aspect {ELLIPSE_ASPECT:g}, heart width 2R, {SUPERSAMPLE}x{SUPERSAMPLE} "
    "supersampling, coverage >= 0.5, 1-px steps, posX right, posY down"
)
VERSION = f"vae_jax procedural dsprites v1 ({GEOMETRY})"
NUM_TEST = 10_000
NUM_VAL = 10_000  # data.val_size = -1 (auto); an explicit data.val_size is kept
MAX_RENDER = 100_000  # images a SpriteImages view renders at once (400 MB)

# The heart (x² + y² − 1)³ − x²y³ ≤ 0 spans x ∈ [−1.139, 1.139], y ∈ [−1, 1.236].
_HEART_HALF_WIDTH = 1.1390
_HEART_MID_Y = (1.2360 - 1.0) / 2


# --- the flat dSprites index ---------------------------------------------------------------


def index_of(factors) -> np.ndarray:
    """[n, 5] factors (shape, scale, orientation, pos_x, pos_y) -> [n] int64 dSprites index."""
    f = np.asarray(factors, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_SIZES):
        raise ValueError(f"factors must be [n, {len(FACTOR_SIZES)}], got {f.shape}")
    if (f < 0).any() or (f >= np.asarray(FACTOR_SIZES)).any():
        raise ValueError(f"factors out of range: sizes are {FACTOR_SIZES}")
    return f @ np.asarray(LATENTS_BASES[1:], dtype=np.int64)


def factors_of(index) -> np.ndarray:
    """[n] dSprites indices -> [n, 5] int64 factors (shape, scale, orientation, pos_x, pos_y)."""
    i = np.asarray(index, dtype=np.int64)
    if (i < 0).any() or (i >= NUM_IMAGES).any():
        raise ValueError(f"dSprites indices must be in [0, {NUM_IMAGES})")
    return np.stack(
        [(i // b) % s for b, s in zip(LATENTS_BASES[1:], FACTOR_SIZES, strict=True)], axis=-1
    )


# --- rendering -----------------------------------------------------------------------------


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the points (u, v), in units of R with v up, are inside the unit shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "ellipse":
        return u**2 + (v / ELLIPSE_ASPECT) ** 2 <= 1.0
    x, y = u * _HEART_HALF_WIDTH, v * _HEART_HALF_WIDTH + _HEART_MID_Y
    return (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0


@functools.lru_cache(maxsize=1)
def base_sprites() -> np.ndarray:
    """[3, 6, 40, CANVAS, CANVAS] uint8 in {0, 1}: every shape × scale × orientation at
    the canvas centre (the module docstring's geometry). Rendered once per process."""
    k = SUPERSAMPLE
    t = (np.arange(CANVAS * k) + 0.5) / k - CENTRE  # sample centres, pixels from centre
    dx, dy = t[None, :], -t[:, None]  # columns right, rows down -> dy up
    out = np.zeros((len(SHAPES), len(SCALES), len(ORIENTATIONS), CANVAS, CANVAS), np.uint8)
    for o, theta in enumerate(ORIENTATIONS[:-1]):  # the last (2π) is the first (0)
        c, s = np.cos(theta), np.sin(theta)
        # The shape turned by θ counter-clockwise: sample points turned back by −θ.
        u0, v0 = c * dx + s * dy, -s * dx + c * dy
        for j, scale in enumerate(SCALES):
            r = HALF_SIZE * scale
            for i, shape in enumerate(SHAPES):
                hit = _inside(shape, u0 / r, v0 / r)
                coverage = hit.reshape(CANVAS, k, CANVAS, k).mean(axis=(1, 3))
                out[i, j, o] = coverage >= 0.5
    out[:, :, -1] = out[:, :, 0]
    return out


@functools.lru_cache(maxsize=1)
def _windows() -> np.ndarray:
    """[720, 32, 32, 64, 64] uint8 {0, 255}, a strided view (no copy) of the padded base
    sprites: [b, a, c] is the image of base sprite b at position (31 − a, 31 − c)."""
    base = base_sprites().reshape(-1, CANVAS, CANVAS)
    side = IMAGE_SIZE + PAD
    padded = np.zeros((len(base), side, side), np.uint8)
    lo, hi = PAD + ORIGIN, PAD + ORIGIN + CANVAS
    padded[:, lo:hi, lo:hi] = base * np.uint8(255)
    view = np.lib.stride_tricks.sliding_window_view(padded, (IMAGE_SIZE, IMAGE_SIZE), (1, 2))
    view.flags.writeable = False
    return view


def render(indices) -> np.ndarray:
    """dSprites indices [n] -> images [n, 64, 64, 1] uint8 in {0, 255}: each cut from its
    padded base sprite by an integer translation (a copy of n 64×64 windows)."""
    f = factors_of(np.asarray(indices).reshape(-1))
    base = (f[:, 0] * len(SCALES) + f[:, 1]) * len(ORIENTATIONS) + f[:, 2]
    images = _windows()[base, PAD - f[:, 4], PAD - f[:, 3]]  # rows: pos_y, columns: pos_x
    return images[..., None]


# --- ground-truth data sets ----------------------------------------------------------------


class _Factors:
    """disentanglement_lib's GroundTruthData for dSprites (vae_jax.data.ground_truth), over
    `images(indices)` of the subclass."""

    factor_sizes = FACTOR_SIZES
    factor_names = FACTOR_NAMES
    num_images = NUM_IMAGES
    version: str

    index_of = staticmethod(index_of)
    factors_of = staticmethod(factors_of)

    def images(self, indices) -> np.ndarray:
        raise NotImplementedError

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return uniform_factors(self.factor_sizes, num, rng)

    def observations(self, factors, rng: np.random.Generator | None = None) -> np.ndarray:
        """[n, 5] factors -> [n, 64, 64, 1] uint8 in {0, 255}; deterministic (`rng` unused)."""
        del rng
        return self.images(index_of(factors))


class DSprites(_Factors):
    """The procedural dSprites (the module docstring's geometry)."""

    version = VERSION

    def images(self, indices) -> np.ndarray:
        return render(indices)

    def __repr__(self) -> str:
        return "DSprites(procedural)"


class DSpritesArray(_Factors):
    """The original dSprites images (read through tfds), held in the published index order."""

    def __init__(self, images: np.ndarray, origin: str):
        if images.shape != (NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE, 1) or images.dtype != np.uint8:
            raise ValueError(f"expected [{NUM_IMAGES}, 64, 64, 1] uint8, got {images.shape}")
        self._images = images
        self._origin = origin

    @functools.cached_property
    def version(self) -> str:  # the content, hashed once (2.8 GiB: a few seconds)
        digest = hashlib.sha1(memoryview(self._images).cast("B")).hexdigest()
        return f"{self._origin} sha1={digest}"

    def images(self, indices) -> np.ndarray:
        return self._images[np.asarray(indices, dtype=np.int64).reshape(-1)]

    def __repr__(self) -> str:
        return f"DSpritesArray({self._origin})"


@functools.lru_cache(maxsize=1)
def procedural() -> DSprites:
    return DSprites()


# --- the lazy training split ---------------------------------------------------------------


class SpriteImages:
    """A lazy [N, 64, 64, 1] uint8 array of dSprites images: `indices` [N] into the 737,280
    of `source` (DSprites or DSpritesArray), rendered only when indexed.

    `view[i]` is one image [64, 64, 1]; `view[slice | int array | bool mask]` renders those
    images as a numpy array (at most MAX_RENDER at once: more raises ValueError rather than
    filling memory); `take(positions)` is a lazy sub-view; `render(positions)` renders
    exactly those positions with no limit (the caller sized the request). There is
    deliberately no way to turn a large view into an array implicitly: `np.asarray(view)`
    goes through the same limit.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4
    binary = True  # every pixel 0 or 255, by construction

    def __init__(self, indices, source: _Factors | None = None):
        indices = np.array(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= NUM_IMAGES):
            raise ValueError(f"dSprites indices must be in [0, {NUM_IMAGES})")
        indices.flags.writeable = False
        self.indices = indices
        self.source = source if source is not None else procedural()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.indices), IMAGE_SIZE, IMAGE_SIZE, 1)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"SpriteImages({len(self)} images of {self.source!r})"

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        picked = self.indices[key]
        if np.ndim(picked) == 0:
            image = self.source.images(np.asarray([picked]))[0]
            return image[rest] if rest else image
        if picked.size > MAX_RENDER:
            gib = picked.size * IMAGE_SIZE**2 / 2**30
            raise ValueError(
                f"refusing to render {picked.size:,} dSprites images at once ({gib:.1f} GiB); "
                f"at most {MAX_RENDER:,}: index fewer, render in chunks, or keep a lazy "
                "sub-view with .take(positions)"
            )
        images = self.source.images(picked)
        return images[(slice(None), *rest)] if rest else images

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        images = self[:]
        return images if dtype is None else images.astype(dtype)

    def take(self, positions) -> SpriteImages:
        """The lazy view of `positions` (an int array, slice or bool mask) of this one."""
        return SpriteImages(self.indices[positions], self.source)

    def render(self, positions) -> np.ndarray:
        """The images at `positions` [...] (int array), rendered: [positions.size, 64, 64, 1]."""
        return self.source.images(self.indices[np.asarray(positions).reshape(-1)])

    def factors(self) -> np.ndarray:
        """[N, 5] the factors of every image of the view (cheap: no rendering)."""
        return factors_of(self.indices)

    def digest(self) -> str:
        """sha1 of the index array and the source's version: the view's fingerprint."""
        h = hashlib.sha1(self.source.version.encode())
        h.update(memoryview(self.indices).cast("B"))
        return h.hexdigest()


def shape_labels(indices) -> np.ndarray:
    """[n] int32: the shape factor (0 square, 1 ellipse, 2 heart) of each index."""
    return (np.asarray(indices, dtype=np.int64) // LATENTS_BASES[1]).astype(np.int32)


# --- splits and loading --------------------------------------------------------------------


def split_indices(split_seed: int, val_size: int = -1):
    """(train, val, test) int64 dSprites indices: test = the first NUM_TEST of the
    permutation default_rng(split_seed), validation = the next `val_size` (-1: NUM_VAL; 0:
    none), train = the rest, sorted. Test and validation stay in that random order, so
    that their first n images (eval.max_examples, the figures) are a uniform sample of
    the factor grid, not the lowest indices (small squares)."""
    num_val = NUM_VAL if val_size == -1 else int(val_size)
    if num_val >= NUM_IMAGES - NUM_TEST:
        raise DataError(
            f"config.data.val_size={val_size} leaves no dsprites training data "
            f"({NUM_IMAGES - NUM_TEST:,} images after the {NUM_TEST:,} test images); use a "
            f"value below {NUM_IMAGES - NUM_TEST}, or -1 (auto: {NUM_VAL})"
        )
    perm = np.random.default_rng(split_seed).permutation(NUM_IMAGES)
    test, val, train = np.split(perm, [NUM_TEST, NUM_TEST + num_val])
    return np.sort(train), val, test


def load_splits(source: _Factors, split_seed: int, val_size: int = -1) -> dict:
    """{"train": (SpriteImages, labels), "val": (images, labels), "test": (images, labels)}:
    the lazy training split and the materialised validation and test splits (uint8
    [n, 64, 64, 1] in {0, 255}); labels are the shape factor (int32)."""
    train, val, test = split_indices(split_seed, val_size)
    return {
        "train": (SpriteImages(train, source), shape_labels(train)),
        "val": (source.images(val), shape_labels(val)),
        "test": (source.images(test), shape_labels(test)),
    }


def description(source: _Factors, num_train: int, num_val: int, num_test: int) -> str:
    """Dataset.description for dSprites: where the images come from and how it is split."""
    origin = (
        "procedurally generated (vae_jax.data.dsprites)"
        if isinstance(source, DSprites)
        else "the original images (tfds dsprites)"
    )
    return (
        f"dSprites (Matthey et al. 2017), {origin}: {NUM_IMAGES:,} binary 64x64 images; "
        f"test = {num_test:,} and validation = {num_val:,} images drawn at random "
        f"(data.split_seed) from the same factor grid as the {num_train:,} training images "
        "(no held-out factor combinations, as in the disentanglement literature, which "
        "trains on all of dSprites); binary by construction, so no binarization applies"
    )


# --- the original images, through tfds -----------------------------------------------------

TFDS_LABELS = (
    "label_shape",
    "label_scale",
    "label_orientation",
    "label_x_position",
    "label_y_position",
)


def place_examples(out: np.ndarray, seen: np.ndarray, examples) -> None:
    """Write tfds dsprites examples (dicts: image [64, 64, 1] in {0, 1}, label_*) into
    `out` [737280, 64, 64, 1] at their published index (from their labels), as 0/255."""
    factors = np.array([[int(ex[k]) for k in TFDS_LABELS] for ex in examples], np.int64)
    index = index_of(factors)
    if seen[index].any() or len(np.unique(index)) != len(index):
        raise DataError("the tfds dsprites build holds an image twice; prepare it again")
    images = np.stack([np.asarray(ex["image"], dtype=np.uint8) for ex in examples])
    out[index] = images * np.uint8(255) if images.max() <= 1 else images
    seen[index] = True


def load_tfds(data_dir: str, chunk: int = 4096) -> DSpritesArray:
    """The prepared tfds `dsprites` build (one 'train' split of the 737,280 images), read
    with `tfds.data_source` into memory (2.8 GiB uint8) in the published index order."""
    import tensorflow_datasets as tfds

    source = tfds.data_source("dsprites", split="train", data_dir=data_dir, download=False)
    if len(source) != NUM_IMAGES:
        raise DataError(
            f"the tfds dsprites build in {data_dir} holds {len(source):,} images, expected "
            f"{NUM_IMAGES:,}; prepare it again (`python -m vae_jax.data.prepare dsprites`)"
        )
    out = np.zeros((NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8)
    seen = np.zeros(NUM_IMAGES, bool)
    for start in range(0, NUM_IMAGES, chunk):
        keys = list(range(start, min(start + chunk, NUM_IMAGES)))
        place_examples(out, seen, source.__getitems__(keys))
    info = getattr(source, "dataset_info", None)
    version = getattr(info, "version", "?")
    return DSpritesArray(out, f"tfds dsprites {version} in {data_dir}")
