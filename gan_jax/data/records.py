"""Decoded-once example files: every example of a split, cropped and resized, stored as a
fixed-size uint8 record in one flat file, and read back by offset.

Decoding (PNG/JPEG, crop, resize) costs about as much per image as the paper's MNIST step, so it
is done once per (source, split, size) and cached; reading records back with `os.pread` runs at
~500,000 images/s and lives in the page cache, not in the process: host memory does not grow with
the dataset. The file is written under a temporary name and renamed when complete, so a run killed
while writing leaves nothing that looks finished.
"""
import json
import os
import shutil
import time
from typing import Callable, Iterable, Optional

import numpy as np
import PIL.Image

from gan_jax import progress
from gan_jax.errors import UserError

_IMAGES, _LABELS, _META = 'images.u8', 'labels.npy', 'meta.json'
FORMAT = 1


def cache_root(data_config) -> str:
  """Where decoded records (and local copies of bucket data) go when data.cache_dir is unset."""
  return data_config.cache_dir or os.path.join(os.path.expanduser('~'), '.cache', 'gan_jax')


class Records:
  """Random access to a finished record directory, or to records [start, stop) of it (a slice of
  the split it holds): `read(indices)` -> uint8 [n, H, W, C], indices counted from `start`."""

  def __init__(self, directory: str, start: int = 0, stop: Optional[int] = None):
    with open(os.path.join(directory, _META)) as f:
      self.meta = json.load(f)
    self.directory = directory
    self.shape = tuple(self.meta['shape'])
    self._record = int(np.prod(self.shape))
    total = int(self.meta['count'])
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
      raise ValueError(f'records [{start}:{stop}] of {total} in {directory}')
    self._start, self._count = start, stop - start
    labels = os.path.join(directory, _LABELS)
    self.labels = np.load(labels)[start:stop] if os.path.exists(labels) else None
    self._fd = os.open(os.path.join(directory, _IMAGES), os.O_RDONLY)

  def __len__(self) -> int:
    return self._count

  def read(self, indices) -> np.ndarray:
    indices = np.asarray(indices, np.int64).reshape(-1)
    out = np.empty((len(indices), self._record), np.uint8)
    for row, i in zip(out, indices):
      if not 0 <= i < self._count:
        raise IndexError(f'record {i} of {self._count}')
      os.preadv(self._fd, [row], int(self._start + i) * self._record)
    return out.reshape((len(indices),) + self.shape)

  def read_range(self, start: int, stop: int) -> np.ndarray:
    stop = min(stop, self._count)
    buf = os.pread(self._fd, (stop - start) * self._record, (self._start + start) * self._record)
    return np.frombuffer(buf, np.uint8).reshape((stop - start,) + self.shape)

  def chunks(self, size: int = 10_000):
    for start in range(0, self._count, size):
      yield self.read_range(start, start + size)

  def read_all(self) -> np.ndarray:
    return self.read_range(0, self._count)

  def mean(self) -> np.ndarray:
    """Per-pixel mean in [0, 1], one chunk in memory at a time."""
    total = np.zeros(self.shape, np.float64)
    for chunk in self.chunks():
      total += chunk.sum(axis=0, dtype=np.float64)
    return (total / max(self._count, 1) / 255.0).astype(np.float32)

  def close(self):
    os.close(self._fd)


def center_crop_resize(image: np.ndarray, size: Optional[int]) -> np.ndarray:
  """A uint8 [H, W, C] image cropped to its central square and resized to size×size with an
  antialiasing filter (Lanczos); returned as is when it already has that size or size is None."""
  h, w = image.shape[:2]
  if size is None or (h == w == size):
    return image
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = image[top:top + side, left:left + side]
  pil = PIL.Image.fromarray(square[..., 0] if square.shape[-1] == 1 else square)
  out = np.asarray(pil.resize((size, size), PIL.Image.Resampling.LANCZOS))
  return out[..., None] if out.ndim == 2 else out


def build(directory: str, examples: Callable[[], Iterable], count: int, describe: str,
          info: dict) -> Records:
  """Writes `directory` from `examples()` (an iterable of (uint8 image, label or None), or None
  for an example to skip) unless it is already complete, then opens it.

  `info` identifies the source (name, split, size...); a directory made from other info is
  rebuilt. Every example must have the shape of the first one.
  """
  if _complete(directory, info):
    return Records(directory)
  parent = os.path.dirname(directory)
  try:
    os.makedirs(parent, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot create the data cache {parent} ({e.strerror}); set '
                    '--config.data.cache_dir to a writable directory.') from None
  tmp = f'{directory}.tmp-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  shape, labels, written, skipped = None, [], 0, 0
  start = last_log = time.monotonic()
  progress.log('Decoding %s once into %s (%d examples).', describe, directory, count)
  with open(os.path.join(tmp, _IMAGES), 'wb') as f:
    for example in examples():
      if example is None:
        skipped += 1
        continue
      image, label = example
      image = np.asarray(image, np.uint8)
      if shape is None:
        shape = image.shape
      elif image.shape != shape:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f'{describe}: images of different sizes ({shape[:2]} and {image.shape[:2]}); '
                        'set --config.data.image_size=N to crop and resize them all to N×N.')
      f.write(image.tobytes())
      labels.append(-1 if label is None else int(label))
      written += 1
      if time.monotonic() - last_log > 10:
        last_log = time.monotonic()
        rate = written / (last_log - start)
        progress.log('  %d/%d decoded (%.0f/s, %.0f s left)', written + skipped, count, rate,
                     (count - written - skipped) / max(rate, 1e-9))
  if written == 0:
    shutil.rmtree(tmp, ignore_errors=True)
    raise UserError(f'{describe}: no example could be read ({skipped} skipped).')
  if any(l >= 0 for l in labels):
    np.save(os.path.join(tmp, _LABELS), np.asarray(labels, np.int32))
  meta = {'format': FORMAT, 'info': info, 'count': written, 'skipped': skipped, 'shape': list(shape)}
  with open(os.path.join(tmp, _META), 'w') as f:
    json.dump(meta, f)
  if os.path.isdir(directory):  # an outdated cache (other info), or one another process just made
    if _complete(directory, info):
      shutil.rmtree(tmp, ignore_errors=True)
      return Records(directory)
    shutil.rmtree(directory)
  try:
    os.rename(tmp, directory)
  except OSError:  # another process renamed its copy first: use that one
    shutil.rmtree(tmp, ignore_errors=True)
  progress.log('Decoded %d examples of %s in %.1f s%s.', written, describe, time.monotonic() - start,
               f' ({skipped} could not be read and were skipped)' if skipped else '')
  return Records(directory)


def open_complete(directory: str, info: dict, start: int = 0, stop: Optional[int] = None) -> Optional[Records]:
  """Records [start, stop) of `directory` when it is complete and was made from `info`, else None."""
  return Records(directory, start, stop) if _complete(directory, info) else None


def _complete(directory: str, info: dict) -> bool:
  try:
    with open(os.path.join(directory, _META)) as f:
      meta = json.load(f)
  except (OSError, ValueError):
    return False
  return meta.get('format') == FORMAT and meta.get('info') == info
