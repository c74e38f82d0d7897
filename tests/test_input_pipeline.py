"""The data path: real MNIST/Fashion-MNIST archives through tfds (no TF), CIFAR-10 on tfds mock
data, index batching and its resumable state, and clear errors for bad archives."""
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import mnist
from gan_jax import input_pipeline
from gan_jax.errors import UserError


def test_mnist_from_the_official_archives(mnist_dir, tfds_dir):
  train = input_pipeline.load_images('mnist', 'train[:50000]', tfds_dir, mnist_dir)
  test = input_pipeline.load_images('mnist', 'test', tfds_dir, mnist_dir)
  assert train.shape == (50000, 28, 28, 1) and test.shape == (10000, 28, 28, 1)
  assert train.dtype == np.uint8 and train.min() == 0 and train.max() == 255
  # MNIST's well-known pixel mean (0.1307 on all 60k) pins down that these are the real digits
  assert abs(train.mean() / 255 - 0.1307) < 0.002
  c = mnist.get_config()
  c.data.manual_dir, c.data.data_dir = mnist_dir, tfds_dir
  data = input_pipeline.load_dataset(c.data, c.data.train_split, c.seed)
  assert data.dtype == np.float32 and data.min() == 0.0 and data.max() == 1.0
  it = input_pipeline.BatchIterator(data, 100, k=2, num_devices=4, device_offset=0, local_devices=4, seed=0)
  assert it.batches_per_epoch == 500
  batches = [next(it) for _ in range(250)]  # 250 steps × k=2 minibatches = one epoch
  assert batches[0].shape == (4, 2, 25, 28, 28, 1)
  assert it.get_state() == {'epoch': 1, 'position': 0}
  seen = np.concatenate([b.reshape(-1, 784) for b in batches])
  assert len(np.unique(seen, axis=0)) == len(np.unique(data.reshape(-1, 784), axis=0))


def test_fashion_mnist_from_the_official_archives(fashion_mnist_dir, tfds_dir):
  test = input_pipeline.load_images('fashion_mnist', 'test', tfds_dir, fashion_mnist_dir)
  assert test.shape == (10000, 28, 28, 1) and test.dtype == np.uint8


def test_cifar10_on_tfds_mock_data(tmp_path, cifar10_mock):
  with cifar10_mock(64):
    images = input_pipeline.load_images('cifar10', 'train', str(tmp_path))
  assert images.shape == (64, 32, 32, 3) and images.dtype == np.uint8
  scaled = input_pipeline.scale(images, 'symmetric')
  assert scaled.min() >= -1 and scaled.max() <= 1


def _index_data(n):
  return np.arange(n, dtype=np.float32)[:, None]


def test_epochs_are_permutations_and_resume_is_exact():
  it = input_pipeline.BatchIterator(_index_data(103), 10, k=3, num_devices=2, device_offset=0,
                                    local_devices=2, seed=5)
  first_epoch = np.concatenate([next(it).reshape(-1) for _ in range(3)] + [next(it)[:, :1].reshape(-1)])
  assert len(set(first_epoch.tolist())) == 100  # 10 batches of 10 from 103: no repeats
  for _ in range(4):
    next(it)
  saved = it.get_state()
  expected = [next(it) for _ in range(5)]
  resumed = input_pipeline.BatchIterator(_index_data(103), 10, k=3, num_devices=2, device_offset=0,
                                         local_devices=2, seed=5)
  resumed.set_state(saved)
  for e in expected:
    np.testing.assert_array_equal(next(resumed), e)


def test_hosts_and_devices_see_one_global_batch():
  data = _index_data(1000)
  make = lambda offset, local: input_pipeline.BatchIterator(data, 64, 2, 4, offset, local, seed=1)
  one_host = next(make(0, 4))
  two_hosts = np.concatenate([next(make(0, 2)), next(make(2, 2))])
  np.testing.assert_array_equal(one_host, two_hosts)
  single = next(input_pipeline.BatchIterator(data, 64, 2, 1, 0, 1, seed=1))  # [1, k, 64]
  np.testing.assert_array_equal(one_host.swapaxes(0, 1).reshape(2, 64, 1), single[0])


def test_batch_not_divisible_by_devices_is_a_clear_error():
  with pytest.raises(UserError, match='not divisible by the 3 devices'):
    input_pipeline.BatchIterator(_index_data(100), 32, 1, 3, 0, 3, seed=0)


def test_manual_dir_missing_files(tmp_path):
  with pytest.raises(UserError, match='train-images-idx3-ubyte.gz is missing'):
    input_pipeline.load_images('mnist', 'test', str(tmp_path / 'tfds'), str(tmp_path))
  assert not os.path.exists(tmp_path / 'tfds' / 'mnist')


def test_manual_dir_wrong_checksum(mnist_dir, tmp_path):
  bad = tmp_path / 'archives'
  shutil.copytree(mnist_dir, bad)
  labels = bad / 't10k-labels-idx1-ubyte.gz'
  os.chmod(labels, 0o644)
  raw = bytearray(labels.read_bytes())
  raw[100] ^= 0xFF
  labels.write_bytes(bytes(raw))
  with pytest.raises(UserError, match='t10k-labels-idx1-ubyte.gz does not match the official file'):
    input_pipeline.load_images('mnist', 'test', str(tmp_path / 'tfds'), str(bad))


def test_unknown_dataset():
  with pytest.raises(UserError, match="data.name='svhn'"):
    input_pipeline.prepare('svhn', None, None)
