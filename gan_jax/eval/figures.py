"""Pictures written as PNG: sample grids (images), scatter plots (2-D), histograms (1-D)."""

import numpy as np
import PIL.Image

from gan_jax import files


def pyplot():
  """matplotlib, imported when a plot is drawn: image runs never need it (~0.5 s of every start)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


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
  with files.open_file(path, 'wb') as f:
    PIL.Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(f, format='PNG')


def save_samples(samples: np.ndarray, path: str, scale: str, reference: np.ndarray = None) -> np.ndarray:
  """Writes samples as a picture suited to their dimension; returns the image (HWC uint8)."""
  if samples.ndim == 4:
    grid = image_grid(to_uint8(samples, scale), ncols=int(np.ceil(np.sqrt(len(samples)))))
    save_png(grid, path)
    return grid if grid.shape[-1] == 3 else np.repeat(grid, 3, axis=-1)
  plt = pyplot()
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
  fig.canvas.draw()  # rendered once: the picture written is the one returned (savefig renders again)
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  save_png(image, path)
  return image


def nearest_neighbours(queries: np.ndarray, chunks) -> np.ndarray:
  """Index in the data, given as consecutive chunks, of each query's nearest example (L2)."""
  q = queries.reshape(len(queries), -1).astype(np.float32)
  best_d, best_i = np.full(len(q), np.inf), np.zeros(len(q), np.int64)
  start = 0
  for x in chunks:
    x = np.asarray(x, np.float32).reshape(-1, q.shape[1])
    d = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * q @ x.T
    i = d.argmin(1)
    better = d[np.arange(len(q)), i] < best_d
    best_d[better], best_i[better] = d[np.arange(len(q)), i][better], start + i[better]
    start += len(x)
  return best_i


def figure2(samples: np.ndarray, train_chunks, read_train, scale: str, path: str, cols: int = 6) -> str:
  """Fig. 2: rows of fair random samples; the rightmost column (framed in yellow) is the training
  example nearest to its neighbouring sample, to show the model has not memorised them.
  `train_chunks`: the training data in consecutive chunks; `read_train(indices)`: examples."""
  rows = len(samples) // cols
  grid_samples = samples[:rows * cols].reshape((rows, cols) + samples.shape[1:])
  nearest = read_train(nearest_neighbours(grid_samples[:, -1], train_chunks))
  images = to_uint8(np.concatenate([grid_samples, nearest[:, None]], axis=1), scale)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  pad = 2
  images[:, -1, :pad], images[:, -1, -pad:] = (255, 215, 0), (255, 215, 0)
  images[:, -1, :, :pad], images[:, -1, :, -pad:] = (255, 215, 0), (255, 215, 0)
  grid = image_grid(images.reshape((-1,) + images.shape[2:]), ncols=cols + 1, pad=2)
  save_png(grid, path)
  return path


def figure3(rows_of_images: np.ndarray, scale: str, path: str) -> str:
  """Fig. 3: each row linearly interpolates between two z; [rows, steps, H, W, C]."""
  rows, steps = rows_of_images.shape[:2]
  grid = image_grid(to_uint8(rows_of_images.reshape((rows * steps,) + rows_of_images.shape[2:]), scale), ncols=steps)
  save_png(grid, path)
  return path
