"""Data: any tfds image dataset, a folder of the user's images, or a synthetic density.

`open_split(data_config, split)` gives random access to one split (uint8 images decoded once into
a record file, or the synthetic samples in memory); `pipeline.train_iterator` streams training
batches from it through grain; `load_unit_split` reads a small split whole (evaluation).
"""
from gan_jax.data import pipeline, records, synthetic
from gan_jax.data.pipeline import from_unit, scale, to_unit  # noqa: F401  (the public names)

SYNTHETIC = synthetic.NAMES


def open_split(data_config, split: str, seed: int = 0):
  """Random access to one split: `len`, `.shape`, `.labels`, `read(indices)`, `read_all()`."""
  name = data_config.name
  if name in SYNTHETIC:
    train = split == data_config.train_split
    n = data_config.num_examples if train else data_config.num_eval_examples
    return synthetic.ArraySource(*synthetic.sample_labelled(name, n, seed + (0 if train else 1)))
  # imported here: tfds costs ~0.4 s at every start, and synthetic data never needs it
  from gan_jax.data import folder, tfds_source  # pylint: disable=g-import-not-at-top
  if name == 'folder':
    return folder.open_records(data_config, split, records.cache_root(data_config))
  return tfds_source.open_records(data_config, split)


def load_unit_split(data_config, split: str, seed: int = 0):
  """A whole (small) image split as [0, 1] float32 pixels (what every metric sees, whatever G's
  range), and its labels (or None)."""
  source = open_split(data_config, split, seed)
  return scale(source.read_all(), 'unit'), source.labels
