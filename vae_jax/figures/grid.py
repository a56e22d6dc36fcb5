"""Image grids written as PNG with Pillow: no matplotlib state, no training."""

from __future__ import annotations

import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from vae_jax.distributed import is_writer


def to_grid(images: np.ndarray, ncols: int, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """[N, H, W, C] floats in [0, 1] -> one [rows·(H+pad)+pad, cols·(W+pad)+pad, C] image."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, ncols)
        grid[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + k * (w + pad) : pad + k * (w + pad) + w,
        ] = img
    return grid


def save_grid(path: str, images: np.ndarray, ncols: int, scale: int = 3) -> None:
    """Save images [N, H, W, C] in [0, 1] as a grid PNG, upscaled `scale`× (nearest)."""
    grid = (to_grid(images, ncols) * 255).round().astype(np.uint8)
    grid = grid[..., 0] if grid.shape[-1] == 1 else grid
    img = Image.fromarray(grid)
    if is_writer():  # process 0 of a multi-host run
        img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)


def save_labelled_grid(
    path: str,
    rows: np.ndarray,
    row_labels: list[str],
    scale: int = 3,
    font_size: int = 20,
) -> None:
    """Save rows [R, K, H, W, C] in [0, 1] as a grid PNG with one text label left of each row.

    Upscaled `scale`× (nearest) like `save_grid`; the labels sit in a white margin sized to
    the longest one, vertically centred on their row.
    """
    rows = np.asarray(rows)
    if len(row_labels) != len(rows):
        raise ValueError(f"{len(row_labels)} labels for {len(rows)} rows")
    r, k, h = rows.shape[:3]
    grid = (to_grid(rows.reshape(r * k, *rows.shape[2:]), ncols=k) * 255).round().astype(np.uint8)
    grid = grid[..., 0] if grid.shape[-1] == 1 else grid
    img = Image.fromarray(grid).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    font = _font(font_size)
    measure = ImageDraw.Draw(img)
    margin = 8 + max(int(measure.textlength(t, font=font)) for t in row_labels) if r else 0
    canvas = Image.new("RGB", (img.width + margin, img.height), "white")
    canvas.paste(img, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    pad = 2  # to_grid's padding
    for i, text in enumerate(row_labels):
        centre = (pad + i * (h + pad) + h / 2) * scale
        draw.text((4, centre), text, fill="black", font=font, anchor="lm")
    if is_writer():
        canvas.save(path)


def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's own files (it has μ, β, ≈ and the rest of the labels'
    glyphs, which Pillow's bundled default font lacks)."""
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
