"""A user's own images: every jpg/png/webp file under `data.path`, searched recursively.

The folder has one split, `train`, sliced with tfds' syntax (`train[:95%]`, `train[-1000:]`) in
the sorted order of the relative paths, so splits are stable across machines. Its listing (paths,
sizes, modification times) names the decoded-once record file, so adding, removing or changing a
file makes a new one. A file that cannot be decoded is skipped and counted, never a crash mid-run.
"""
import hashlib
import os
import types

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from gan_jax import progress
from gan_jax.data import records
from gan_jax.errors import UserError

EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp')


def list_images(path: str):
  """Sorted [(relative path, size, mtime_ns)] of the image files under `path`."""
  if not path or not os.path.isdir(path):
    raise UserError(f'data.path={path!r} is not a directory; pass the folder of your images with '
                    '--config.data.path=DIR.')
  found = []
  for root, dirs, files in os.walk(path):
    dirs.sort()
    for name in files:
      if name.lower().endswith(EXTENSIONS):
        full = os.path.join(root, name)
        st = os.stat(full)
        found.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
  if not found:
    raise UserError(f'data.path={path!r} holds no {"/".join(e[1:] for e in EXTENSIONS)} images '
                    '(searched recursively); point --config.data.path at your image folder.')
  found.sort()
  return found


def split_range(split: str, count: int):
  """(start, stop) of a tfds-style split of the folder's one split, 'train'."""
  try:
    (instr,) = tfds.core.ReadInstruction.from_spec(split).to_absolute(
        {'train': types.SimpleNamespace(num_examples=count)})
  except (ValueError, AssertionError) as e:
    raise UserError(f'split {split!r} of an image folder: {e}. A folder has one split, train; '
                    "take parts of it as train[:95%] or train[-1000:].") from None
  start = 0 if instr.from_ is None else instr.from_
  stop = count if instr.to is None else instr.to
  return start, stop


def decode(path: str, image_size):
  """A uint8 RGB [H, W, 3] image, cropped and resized; None when the file cannot be decoded."""
  try:
    with PIL.Image.open(path) as im:
      image = np.asarray(im.convert('RGB'))
  except (OSError, ValueError, PIL.Image.DecompressionBombError):
    return None
  return records.center_crop_resize(image, image_size)


def open_records(data_config, split: str, cache_root: str) -> records.Records:
  path = os.path.abspath(os.path.expanduser(data_config.path or ''))
  files = list_images(path)
  start, stop = split_range(split, len(files))
  chosen = files[start:stop]
  listing = hashlib.sha256(repr(chosen).encode()).hexdigest()[:16]
  folder_key = hashlib.sha256(path.encode()).hexdigest()[:12]
  size = data_config.image_size
  info = {'folder': path, 'split': split, 'image_size': size, 'listing': listing}
  directory = os.path.join(cache_root, 'folders', folder_key, f'{_safe(split)}_{size or "native"}_{listing}')
  examples = lambda: ((lambda im: None if im is None else (im, None))(decode(os.path.join(path, rel), size))
                      for rel, _, _ in chosen)
  out = records.build(directory, examples, len(chosen), f'{path} [{split}]', info)
  if out.meta['skipped']:
    progress.log('%d of %d files in %s could not be decoded and are skipped.', out.meta['skipped'],
                 len(chosen), path)
  return out


def _safe(split: str) -> str:
  return ''.join(c if c.isalnum() else '_' for c in split)
