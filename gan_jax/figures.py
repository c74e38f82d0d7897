"""Pictures written as PNG: sample grids (images), scatter plots (2-D), histograms (1-D)."""
import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402


def to_uint8(images: np.ndarray, scale: str) -> np.ndarray:
  """Model-range images back to uint8 pixels."""
  images = np.asarray(images, np.float32)
  if scale == 'symmetric':
    images = (images + 1.0) / 2.0
  return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] uint8 → one [rows·(H+pad), cols·(W+pad), C] image."""
  n, h, w, c = images.shape
  nrows = -(-n // ncols)
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
  for i, img in enumerate(images):
    r, col = divmod(i, ncols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):pad + col * (w + pad) + w] = img
  return grid


def save_png(array: np.ndarray, path: str) -> None:
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  PIL.Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def save_samples(samples: np.ndarray, path: str, scale: str, reference: np.ndarray = None) -> np.ndarray:
  """Writes samples as a picture suited to their dimension; returns the image (HWC uint8)."""
  if samples.ndim == 4:
    grid = image_grid(to_uint8(samples, scale), ncols=int(np.ceil(np.sqrt(len(samples)))))
    save_png(grid, path)
    return grid if grid.shape[-1] == 3 else np.repeat(grid, 3, axis=-1)
  fig, ax = plt.subplots(figsize=(5, 5))
  if samples.shape[-1] == 2:
    if reference is not None:
      ax.scatter(reference[:, 0], reference[:, 1], s=4, c='tab:blue', alpha=0.3, label='data')
    ax.scatter(samples[:, 0], samples[:, 1], s=4, c='tab:orange', alpha=0.6, label='G(z)')
    ax.set_aspect('equal')
  else:
    if reference is not None:
      ax.hist(reference[:, 0], bins=60, density=True, alpha=0.4, label='data')
    ax.hist(samples[:, 0], bins=60, density=True, alpha=0.6, label='G(z)')
  ax.legend(loc='upper right')
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return image
