"""The held-out splits every metric is measured against, read once per cache, and the evaluation
classifier trained on the training split. `split` is 'valid' (data.valid_split: chooses) or
'test' (data.eval_split: reports)."""
import os

from gan_jax import data
from gan_jax.eval import classifier


def unit_split(data_cfg, split: str, seed: int):
  """A split as [0, 1] pixels (what Parzen and the classifier see, whatever G's range) and labels."""
  return data.load_unit_split(data_cfg, split, seed)


def has_held_out(data_cfg) -> bool:
  """False when nothing is held out to compare samples with (a folder of the user's images)."""
  return bool(data_cfg.valid_split and data_cfg.eval_split)


def split_name(data_cfg, split: str) -> str:
  """The tfds split behind 'valid' or 'test'."""
  return data_cfg.valid_split if split == 'valid' else data_cfg.eval_split


def held_out_split(data_cfg, seed: int, cache: dict, split: str):
  """(images as [0, 1] pixels, labels) of the 'valid' or 'test' split, read once per `cache`."""
  if split not in cache:
    cache[split], cache[f'{split}_labels'] = unit_split(data_cfg, split_name(data_cfg, split), seed)
  return cache[split], cache[f'{split}_labels']


def classifier_path(config) -> str:
  subset = f'_first{config.eval.classifier_examples}' if config.eval.classifier_examples else ''
  return config.eval.classifier_path or os.path.join(
      os.path.expanduser('~'), '.cache', 'gan_jax', f'classifier_{config.data.name}{subset}.msgpack')


def load_classifier(config, images, labels):
  """The evaluation classifier's parameters: cached, or trained once on the training split (its
  accuracy on `images`, `labels` checked)."""
  def training_data():  # the first eval.classifier_examples (0: all), only those decoded
    n = config.eval.classifier_examples
    return unit_split(config.data, f'train[:{n}]' if n else 'train', config.seed)
  return classifier.load_or_train(classifier_path(config), training_data, images, labels,
                                  epochs=config.eval.classifier_epochs)
