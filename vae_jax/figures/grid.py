"""Image grids written as PNG with Pillow: no matplotlib state, no training."""

from __future__ import annotations

import numpy as np
from PIL import Image


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
    img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)
