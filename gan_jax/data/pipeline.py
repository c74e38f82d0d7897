"""Training batches as a grain pipeline over a random-access source.

    range(N) → shuffle (seed; reseeded every epoch) → global batches of indices
    (drop_remainder, per epoch) → repeat → k per step → this host's devices' rows → read

The indices are exactly those of grain's `MapDataset.range(N).shuffle(seed).batch(B,
drop_remainder=True).repeat().batch(k, drop_remainder=True)`, drawn a step at a time
(`StepIndices`, with `index_shuffle`'s batched form of grain's shuffle) instead of an example at a
time: ~25 µs an example less, a third of a toy model's step.

Every host builds the same global index batches and reads only its own devices' rows, so the
global batch of a step does not depend on how it is split over hosts and devices. Each element
is one train_step's input, [local_devices, k, per_device_batch, *example_shape], uint8 for images
(scaled on the device inside the step, `scale`); with `labels`, a dict of those images and their
int32 class labels [local_devices, k, per_device_batch]. The iterator is grain's: its state is exact and
goes into the checkpoint, so a resumed run sees exactly the batches an uninterrupted one would.
"""
import sys

import grain
import numpy as np

from gan_jax.data import index_shuffle
from gan_jax.errors import UserError

SCALES = ('unit', 'symmetric', 'none')


def scale(x, kind: str):
  """Pixels to the model's range, for numpy or jax arrays: 'unit' [0, 1] (the paper's MNIST),
  'symmetric' [-1, 1] (tanh G), 'none' as is (synthetic data)."""
  if kind == 'unit':
    return x.astype(np.float32) / 255.0
  if kind == 'symmetric':
    return x.astype(np.float32) / 127.5 - 1.0
  if kind == 'none':
    return x.astype(np.float32)
  raise UserError(f'data.scale={kind!r} is unknown; choose one of {SCALES}.')


def to_unit(x, kind: str):
  """Values in the model's range back to [0, 1] pixels (Parzen is reported on [0, 1])."""
  return (x + 1.0) / 2.0 if kind == 'symmetric' else x


def from_unit(x, kind: str):
  """[0, 1] pixels into the model's range: to_unit's inverse."""
  return x * 2.0 - 1.0 if kind == 'symmetric' else x


class StepIndices:
  """Step s → its [k, global_batch] example indices (see the module doc): update u of step s is
  global batch s·k + u of the repeated epochs, each epoch shuffled with seed + epoch."""

  # up to this many examples an epoch's order is drawn whole (~10 ms up to 65,536, ~0.2 s at the
  # most), then sliced; above it, positions are walked a step at a time
  WHOLE_EPOCH = 1 << 19

  def __init__(self, num_examples: int, global_batch: int, k: int, seed: int):
    self.n, self.batch, self.k, self.seed = num_examples, global_batch, k, seed % 2**32
    self.per_epoch = num_examples // global_batch
    self._orders = {}  # the last two epochs' orders, by seed

  def _shuffled(self, positions, seed):
    if self.n > self.WHOLE_EPOCH:
      return index_shuffle.index_shuffle(positions, self.n - 1, seed)
    order = self._orders.get(seed)
    if order is None:  # replaced whole, not mutated: safe to read from several threads
      order = index_shuffle.permutation(self.n, seed)
      self._orders = dict(list(self._orders.items())[-1:]) | {seed: order}
    return order[positions]

  def __call__(self, s):
    epoch, in_epoch = np.divmod(int(s) * self.k + np.arange(self.k), self.per_epoch)
    positions = in_epoch[:, None] * self.batch + np.arange(self.batch)
    out = np.empty(positions.shape, np.int64)
    for e in np.unique(epoch):
      rows = epoch == e
      out[rows] = self._shuffled(positions[rows], (self.seed + int(e)) % 2**32)
    return out


class _ReadRows:
  """[k, global_batch] indices → this host's rows of the examples, [local, k, b, ...]."""

  def __init__(self, source, num_devices, per_device, rows, labels=False, labelled=None):
    self.source, self.num_devices, self.per_device, self.rows = source, num_devices, per_device, rows
    self.labels = labels
    self.labelled = None
    if labelled is not None:  # the same labelled examples at every update, split over the devices
      ids = np.asarray(labelled).reshape(num_devices, -1)[rows]
      self.labelled = (source.read(ids.reshape(-1)).reshape(ids.shape + tuple(source.shape)),
                       np.asarray(source.labels, np.int32)[ids])

  def __call__(self, idx):
    k = idx.shape[0]
    idx = idx.reshape(k, self.num_devices, self.per_device).transpose(1, 0, 2)[self.rows]
    images = self.source.read(idx.reshape(-1)).reshape(idx.shape + tuple(self.source.shape))
    if not self.labels and self.labelled is None:
      return images
    out = {'image': images}
    if self.labels:
      out['label'] = np.asarray(self.source.labels, np.int32)[idx]
    if self.labelled is not None:
      tile = lambda a: np.broadcast_to(a[:, None], (a.shape[0], k) + a.shape[1:])
      out['labelled_image'], out['labelled_label'] = tile(self.labelled[0]), tile(self.labelled[1])
    return out


def train_iterator(source, global_batch: int, k: int, num_devices: int, device_offset: int,
                   local_devices: int, seed: int, prefetch: int = 2, labels: bool = False,
                   labelled=None):
  """grain's iterator of one train_step's batches (see the module doc); `get_state()` /
  `set_state()` resume it exactly. `prefetch` > 0 reads that many steps ahead in a thread;
  `labels`: each batch is {'image', 'label'} (a conditional model); `labelled`: indices of
  labelled examples added whole to every batch as 'labelled_image'/'labelled_label'
  (semi-supervised learning)."""
  if global_batch % num_devices:
    raise UserError(
        f'train.batch_size={global_batch} is not divisible by the {num_devices} devices in use; '
        f'use a multiple of {num_devices} or set mesh.num_devices to a divisor of it.')
  if len(source) < global_batch:
    raise UserError(f'the training split has {len(source)} examples, fewer than one batch of {global_batch}.')
  rows = slice(device_offset, device_offset + local_devices)
  ds = (grain.MapDataset.range(sys.maxsize // k).map(StepIndices(len(source), global_batch, k, seed))
        .map(_ReadRows(source, num_devices, global_batch // num_devices, rows, labels, labelled)))
  options = grain.ReadOptions(num_threads=1 if prefetch else 0, prefetch_buffer_size=prefetch)
  return iter(ds.to_iter_dataset(options))


def batches_per_epoch(source, global_batch: int) -> int:
  return len(source) // global_batch


def labelled_subset(labels, num_labelled: int, seed: int) -> np.ndarray:
  """Indices of `num_labelled` examples, the same number from each class, drawn with `seed`
  (the semi-supervised protocol: 100 labels, 10 per class)."""
  labels = np.asarray(labels)
  classes = np.unique(labels)
  if num_labelled % len(classes):
    raise UserError(f'data.num_labelled={num_labelled} must be a multiple of the {len(classes)} classes '
                    '(the same number of labels from each).')
  rng = np.random.default_rng(seed)
  per_class = num_labelled // len(classes)
  return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                                 for c in classes]))
