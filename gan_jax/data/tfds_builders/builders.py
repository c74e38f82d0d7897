"""MNIST, Fashion-MNIST and CIFAR-10 builders that prepare data without TensorFlow."""
import gzip
import io
import os
import tarfile

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import cifar as tfds_cifar
from tensorflow_datasets.image_classification import mnist as tfds_mnist

_MNIST_FILES = {
    'train_data': 'train-images-idx3-ubyte.gz',
    'train_labels': 'train-labels-idx1-ubyte.gz',
    'test_data': 't10k-images-idx3-ubyte.gz',
    'test_labels': 't10k-labels-idx1-ubyte.gz',
}


def _read_idx(path, header_bytes, shape):
  with gzip.open(path, 'rb') as f:
    return np.frombuffer(f.read()[header_bytes:], np.uint8).reshape(shape)


def _as_png(image) -> bytes:
  """The image as PNG bytes, which tfds stores as given (it would encode a numpy image with
  TensorFlow, a PIL one with PIL's default zlib level). PNG is lossless, so the decoded pixels
  are the same at any level; zlib's fastest prepares MNIST's 70,000 in less time."""
  out = io.BytesIO()
  PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out, format='PNG', compress_level=1)
  return out.getvalue()


class _IdxMixin:
  """The MNIST-format reading shared by MNIST and Fashion-MNIST."""

  @classmethod
  def urls(cls):
    return [cls.URL + f for f in _MNIST_FILES.values()]

  def _split_generators(self, dl_manager):
    # download (not download_and_extract): we gunzip ourselves, tfds' extractor would need TF.
    paths = dl_manager.download({k: self.URL + v for k, v in _MNIST_FILES.items()})
    return {
        'train': self._generate_examples(60000, paths['train_data'], paths['train_labels']),
        'test': self._generate_examples(10000, paths['test_data'], paths['test_labels']),
    }

  def _generate_examples(self, num_examples, data_path, label_path):
    images = _read_idx(data_path, 16, (num_examples, 28, 28, 1))
    labels = _read_idx(label_path, 8, (num_examples,))
    for i in range(num_examples):
      yield i, {'image': _as_png(images[i]), 'label': int(labels[i])}


class MNIST(_IdxMixin, tfds_mnist.MNIST, skip_registration=True):
  """tfds `mnist` 3.0.1, prepared without TensorFlow."""


class FashionMNIST(_IdxMixin, tfds_mnist.FashionMNIST, skip_registration=True):
  """tfds `fashion_mnist` 3.0.1, prepared without TensorFlow."""


class Cifar10(tfds_cifar.Cifar10, skip_registration=True):
  """tfds `cifar10` 3.0.2, prepared without TensorFlow (reads the binary tarball directly)."""

  @classmethod
  def urls(cls):
    return ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz']

  def _split_generators(self, dl_manager):
    (archive,) = dl_manager.download(self.urls())
    prefix = self._cifar_info.prefix
    with tarfile.open(archive, 'r:gz') as tar:
      names = tar.extractfile(prefix + 'batches.meta.txt').read().decode().split('\n')
      self.info.features['label'].names = [n for n in names if n]
    return {
        'train': self._generate_examples('train_', [(archive, prefix + f) for f in self._cifar_info.train_files]),
        'test': self._generate_examples('test_', [(archive, prefix + f) for f in self._cifar_info.test_files]),
    }

  def _generate_examples(self, split_prefix, filepaths):
    index = 0
    for archive, member in filepaths:
      with tarfile.open(archive, 'r:gz') as tar:
        raw = np.frombuffer(tar.extractfile(member).read(), np.uint8).reshape(-1, 1 + 3 * 32 * 32)
      for row in raw:
        image = row[1:].reshape(3, 32, 32).transpose(1, 2, 0)
        yield index, {'id': f'{split_prefix}{index:05d}', 'image': _as_png(image), 'label': int(row[0])}
        index += 1


BUILDERS = {'mnist': MNIST, 'fashion_mnist': FashionMNIST, 'cifar10': Cifar10}
assert all(cls.name == name for name, cls in BUILDERS.items())
