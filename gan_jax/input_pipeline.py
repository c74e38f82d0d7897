"""Data: tfds (no TensorFlow) or synthetic sources, decoded once, batched by index.

A split is decoded once into a uint8 array; batches are gathered by index from a per-epoch
permutation of the seed. The iterator's whole state is (epoch, position), which goes into the
checkpoint, so a resumed run sees exactly the batches an uninterrupted one would.

Batches come out as [local_devices, k, per_device_batch, *example_shape]: k real minibatches per
train_step (one per discriminator update, as Algorithm 1 samples), split device-major over all
devices of all hosts, of which this host keeps its own devices' rows.
"""
import hashlib
import os
from typing import Optional

from absl import logging
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums as tfds_checksums

from gan_jax import tfds_builders
from gan_jax.errors import UserError

SYNTHETIC = ('ring2d', 'gaussian1d')
DATASETS = tuple(tfds_builders.BUILDERS) + SYNTHETIC


def _sha256(path):
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def check_manual_dir(name: str, manual_dir: str) -> None:
  """Fails fast, with the fix, when manual_dir lacks a file or holds a wrong one.

  tfds would treat a missing or mismatching file as "not downloaded" and go to the network,
  which offline means minutes of DNS retries before an unrelated-looking error.
  """
  registered = tfds_checksums.get_all_url_infos()
  problems = []
  for url in tfds_builders.BUILDERS[name].urls():
    info = registered[url]
    path = os.path.join(manual_dir, info.filename)
    if not os.path.isfile(path):
      problems.append(f'{info.filename} is missing')
    elif os.path.getsize(path) != info.size or _sha256(path) != info.checksum:
      problems.append(f'{info.filename} does not match the official file (size/sha256 differ)')
  if problems:
    raise UserError(
        f'data.manual_dir={manual_dir!r} cannot provide {name}: ' + '; '.join(problems)
        + f'. Put the official archive files ({", ".join(u.rsplit("/", 1)[1] for u in tfds_builders.BUILDERS[name].urls())})'
        ' there, or set data.manual_dir=None to let tfds download them.')


def prepare(name: str, data_dir: Optional[str], manual_dir: Optional[str]):
  """Returns the tfds builder for `name`, preparing the array_record files if needed."""
  if name not in tfds_builders.BUILDERS:
    raise UserError(f'data.name={name!r} is not a tfds dataset here; choose one of {DATASETS}.')
  builder = tfds_builders.BUILDERS[name](data_dir=data_dir, file_format='array_record')
  if not builder.is_prepared():
    if manual_dir is not None:
      check_manual_dir(name, manual_dir)
    logging.info('Preparing %s into %s (once).', name, builder.data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def load_examples(name, split, data_dir=None, manual_dir=None):
  """Decodes a whole split: (uint8 images [N, H, W, C], int labels [N])."""
  source = prepare(name, data_dir, manual_dir).as_data_source(split=split)
  n = len(source)
  images, labels, chunk = [], [], 10000
  for start in range(0, n, chunk):
    records = source.__getitems__(list(range(start, min(start + chunk, n))))
    images.append(np.stack([r['image'] for r in records]))
    labels.append(np.array([r['label'] for r in records], np.int32))
    logging.info('Decoded %s[%s] %d/%d', name, split, min(start + chunk, n), n)
  return np.concatenate(images).astype(np.uint8), np.concatenate(labels)


def load_images(name, split, data_dir=None, manual_dir=None) -> np.ndarray:
  """Decodes a whole split into a uint8 array [N, H, W, C]."""
  return load_examples(name, split, data_dir, manual_dir)[0]


def synthetic(name: str, num_examples: int, seed: int) -> np.ndarray:
  """Samples from the low-dimensional densities of the toy experiments (float32)."""
  rng = np.random.default_rng(seed)
  if name == 'ring2d':
    # 8 Gaussians (std 0.02) on a circle of radius 2, as in the unrolled-GAN mode-collapse test.
    modes = ring2d_modes()
    which = rng.integers(0, len(modes), num_examples)
    return (modes[which] + 0.02 * rng.standard_normal((num_examples, 2))).astype(np.float32)
  if name == 'gaussian1d':
    mean, std = gaussian1d_params()
    return (mean + std * rng.standard_normal((num_examples, 1))).astype(np.float32)
  raise UserError(f'data.name={name!r} is unknown; choose one of {DATASETS}.')


def ring2d_modes(num_modes: int = 8, radius: float = 2.0) -> np.ndarray:
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def gaussian1d_params():
  """(mean, std) of the 1-D data density of Figure 1."""
  return 1.0, 0.5


def scale(images: np.ndarray, kind: str) -> np.ndarray:
  """uint8 pixels to float32: 'unit' is [0, 1] (the paper's MNIST), 'symmetric' [-1, 1] (tanh G)."""
  if kind == 'unit':
    return images.astype(np.float32) / 255.0
  if kind == 'symmetric':
    return images.astype(np.float32) / 127.5 - 1.0
  if kind == 'none':
    return images.astype(np.float32)
  raise UserError(f'data.scale={kind!r} is unknown; choose unit, symmetric or none.')


def load_dataset(data_config, split: str, seed: int) -> np.ndarray:
  """A whole split as float32 in the model's range, from tfds or a synthetic source."""
  if data_config.name in SYNTHETIC:
    n = data_config.num_examples if split == data_config.train_split else data_config.num_eval_examples
    offset = 0 if split == data_config.train_split else 1
    return synthetic(data_config.name, n, seed + offset)
  images = load_images(data_config.name, split, data_config.data_dir, data_config.manual_dir)
  return scale(images, data_config.scale)


class BatchIterator:
  """Minibatches by index, resumable from (epoch, position).

  Every host computes the same global permutation and keeps the rows of its own devices, so the
  global batch of a step does not depend on how it is split over hosts and devices.
  """

  def __init__(self, data: np.ndarray, global_batch: int, k: int, num_devices: int,
               device_offset: int, local_devices: int, seed: int):
    if global_batch % num_devices:
      raise UserError(
          f'train.batch_size={global_batch} is not divisible by the {num_devices} devices in use; '
          f'use a multiple of {num_devices} or set mesh.num_devices to a divisor of it.')
    if len(data) < global_batch:
      raise UserError(f'the training split has {len(data)} examples, fewer than one batch of {global_batch}.')
    self.data, self.global_batch, self.k, self.seed = data, global_batch, k, seed
    self.per_device = global_batch // num_devices
    self.num_devices, self.rows = num_devices, slice(device_offset, device_offset + local_devices)
    self.batches_per_epoch = len(data) // global_batch
    self.epoch, self.position = 0, 0
    self._perm_epoch, self._perm = None, None

  def _permutation(self):
    if self._perm_epoch != self.epoch:
      self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data))
      self._perm_epoch = self.epoch
    return self._perm

  def _next_indices(self):
    start = self.position * self.global_batch
    idx = self._permutation()[start:start + self.global_batch]
    self.position += 1
    if self.position == self.batches_per_epoch:
      self.epoch, self.position = self.epoch + 1, 0
    return idx

  def __iter__(self):
    return self

  def __next__(self) -> np.ndarray:
    idx = np.stack([self._next_indices() for _ in range(self.k)])       # [k, B]
    idx = idx.reshape(self.k, self.num_devices, self.per_device)         # device-major split
    idx = idx.transpose(1, 0, 2)[self.rows]                              # [local_devices, k, b]
    return self.data[idx]

  def get_state(self) -> dict:
    return {'epoch': int(self.epoch), 'position': int(self.position)}

  def set_state(self, state: dict) -> None:
    self.epoch, self.position = int(state['epoch']), int(state['position'])
