"""A folder's quality numbers (gan_jax/eval/folder_metrics.py), with known answers: the folder's
own images as 'samples' are all near copies at distance 0; other digits of the same kind score
near the folder and copy nothing; noise is far. KID itself is tested against a direct
computation in test_fid.py; its subset size is refused in one line when it cannot be met."""
import gzip
import os
import types

import numpy as np
import PIL.Image
import pytest

from configs import folder
from gan_jax.errors import UserError
from gan_jax.eval import folder_metrics, metrics


def _digits(mnist_dir, n):
  with gzip.open(os.path.join(mnist_dir, 't10k-images-idx3-ubyte.gz')) as f:
    return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]


@pytest.fixture(scope='module')
def digit_folder(mnist_dir, tmp_path_factory):
  """300 MNIST test digits as PNG files, and 300 other digits held apart (both as [0, 1] RGB, as
  the folder reader gives them at image_size 28)."""
  root = tmp_path_factory.mktemp('digits')
  digits = _digits(mnist_dir, 600)
  (root / 'photos').mkdir()
  for i, d in enumerate(digits[:300]):
    PIL.Image.fromarray(d).save(root / 'photos' / f'{i:04d}.png')
  unit = lambda d: np.repeat(d[..., None], 3, axis=-1).astype(np.float32) / 255.0
  c = folder.get_config()
  c.data.path, c.data.cache_dir, c.data.image_size = str(root / 'photos'), str(root / 'cache'), 28
  c.eval.num_samples = c.eval.periodic_num_samples = 300
  return types.SimpleNamespace(config=c), unit(digits[:300]), unit(digits[300:])


def test_nearest_other_distances_leave_each_image_out():
  x = np.random.default_rng(0).normal(size=(57, 5, 3)).astype(np.float32)
  flat = x.reshape(len(x), -1).astype(np.float64)
  d = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1))
  np.fill_diagonal(d, np.inf)
  np.testing.assert_allclose(metrics.nearest_other_distances(x, rows=10), d.min(1), rtol=1e-4)
  some = np.array([3, 17, 40, 56])
  np.testing.assert_allclose(metrics.nearest_other_distances(x, some, rows=3), d.min(1)[some], rtol=1e-4)


def test_the_folder_itself_is_all_near_copies_and_scores_zero(digit_folder):
  exp, own, _ = digit_folder
  cache = {}
  result = folder_metrics.scores(exp, own, cache)
  assert np.array_equal(cache['folder_images'], own)  # what the folder reader gives
  assert result['near_copy_fraction'] == 1.0 and result['nn_train_distance_ratio'] < 1e-2, result  # 0 up to rounding
  # KID's unbiased estimate of a set against itself dips just below 0 (the cross term keeps its diagonal)
  assert abs(result['fd_pixels16']) < 1e-3 and -2e-3 < result['kid_pixels16'] <= 0, result


def test_new_digits_score_near_the_folder_and_copy_nothing_and_noise_is_far(digit_folder):
  exp, _, other = digit_folder
  cache = {}
  new = folder_metrics.scores(exp, other, cache)
  noise = folder_metrics.scores(exp, np.random.default_rng(1).uniform(size=other.shape).astype(np.float32), cache)
  assert new['near_copy_fraction'] < 0.05 and 0.8 < new['nn_train_distance_ratio'] < 1.25, new
  assert noise['near_copy_fraction'] == 0.0 and noise['nn_train_distance_ratio'] > 2, noise
  assert noise['fd_pixels16'] > 20 * new['fd_pixels16'] > 0, (new, noise)
  assert noise['kid_pixels16'] > 20 * max(new['kid_pixels16'], new['kid_pixels16_std']), (new, noise)
  # the subset size chosen: at most 1,000 and what both sets hold (300 here)
  assert folder_metrics.subset_size(exp.config, 300, 1000) == 300


def test_a_kid_subset_the_folder_or_the_samples_cannot_fill_is_one_line(digit_folder):
  from gan_jax import train
  exp, _, _ = digit_folder
  c = exp.config.copy_and_resolve_references()
  c.eval.kid_subset_size = 301
  with pytest.raises(UserError, match='eval.kid_subset_size=301: KID compares subsets'):
    train.setup(c)  # more than eval.num_samples: refused with the config alone
  c.eval.num_samples = c.eval.periodic_num_samples = 1000
  with pytest.raises(UserError, match=r'eval.kid_subset_size=301, but the folder holds 300 images'):
    train.setup(c)  # more than the folder: refused once the folder is read, before training
