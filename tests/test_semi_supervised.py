"""§7 item 4, semi-supervised learning: the (K+1)-class losses by hand, the labelled subset (10 per
class from the seed, the same examples at every update, saved with the run), a short run whose D
classifies test digits far above chance, and a resumed run equal to an uninterrupted one."""
import json

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from configs import mnist_semi_supervised
from gan_jax import step, train
from gan_jax.eval import game_metrics
from gan_jax.games import players
from gan_jax.data import pipeline, synthetic
from gan_jax.games import semi_supervised
from tests.conftest import dispatches, tiny_paper_config


def test_losses_are_salimans_formulas_by_hand(monkeypatch):
  """D: CE on the labelled + [-log Z/(Z+1) on data] + [-log 1/(Z+1) on samples]; G: the squared
  gap between the mean features of data and of samples. Logits and features fixed by hand."""
  rng = np.random.default_rng(0)
  real_l, fake_l, lab_l = (rng.normal(size=(8, 10)).astype(np.float32) * 3 for _ in range(3))
  real_f, fake_f = (rng.normal(size=(8, 5)).astype(np.float32) for _ in range(2))
  y = rng.integers(0, 10, 8)
  table = {1: (real_l, real_f), 2: (fake_l, fake_f), 6: (lab_l, real_f)}
  monkeypatch.setattr(players, 'example_keys', lambda spec, key, b, salt: jnp.full((b,), salt))
  monkeypatch.setattr(players, 'generate', lambda spec, g, keys: jnp.zeros((len(keys), 1)))
  monkeypatch.setattr(semi_supervised, 'class_logits', lambda spec, d, x, keys: tuple(map(jnp.asarray, table[int(keys[0])])))
  spec = step.GANSpec(None, None, None, None, 4, game=semi_supervised.SemiSupervised())
  batch = {'image': jnp.zeros((8, 1)), 'labelled_image': jnp.zeros((8, 1)), 'labelled_label': jnp.asarray(y)}
  d_loss, m = spec.game.d_loss(spec, None, None, batch, None)
  lse = lambda l: np.log(np.exp(l.astype(np.float64)).sum(1))
  ce = np.mean(lse(lab_l) - lab_l[np.arange(8), y])
  d_real = np.exp(lse(real_l)) / (np.exp(lse(real_l)) + 1)
  d_fake = np.exp(lse(fake_l)) / (np.exp(lse(fake_l)) + 1)
  expected = ce - np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
  assert float(d_loss) == pytest_approx(expected)
  assert float(m['d_real']) == pytest_approx(d_real.mean()) and float(m['supervised_loss']) == pytest_approx(ce)
  g_loss, _ = spec.game.g_loss(spec, None, None, batch, None)
  assert float(g_loss) == pytest_approx(np.mean((real_f.mean(0) - fake_f.mean(0)) ** 2))


def pytest_approx(v):
  import pytest
  return pytest.approx(float(v), rel=1e-5)


def test_labelled_subset_is_balanced_seeded_and_in_every_batch():
  labels = np.random.default_rng(0).integers(0, 10, 5000).astype(np.int32)
  a, b = pipeline.labelled_subset(labels, 100, 3), pipeline.labelled_subset(labels, 100, 4)
  assert len(set(a.tolist())) == 100 and np.all(np.bincount(labels[a], minlength=10) == 10)
  np.testing.assert_array_equal(a, pipeline.labelled_subset(labels, 100, 3))
  assert not np.array_equal(a, b)
  source = synthetic.ArraySource(np.arange(5000, dtype=np.float32)[:, None], labels)
  it = pipeline.train_iterator(source, 50, k=2, num_devices=2, device_offset=0, local_devices=2, seed=1, labelled=a)
  for _ in range(3):
    batch = next(it)
    assert batch['labelled_image'].shape == (2, 2, 50, 1)
    seen = batch['labelled_image'][:, 0, :, 0].reshape(-1).astype(int)
    np.testing.assert_array_equal(np.sort(seen), a)  # all of them, at every update
    np.testing.assert_array_equal(batch['labelled_label'][:, 1].reshape(-1), labels[seen])


def _tiny(mnist_dir, tfds_dir, steps, weight=1.0):
  c = tiny_paper_config(mnist_semi_supervised.get_config())
  c.model.d_kwargs.hidden = (64, 64)
  c.train.num_steps, c.train.steps_per_call, c.train.unsupervised_weight = steps, 1, weight
  c.data.manual_dir, c.data.data_dir, c.mesh.num_devices = mnist_dir, tfds_dir, 1
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = min(steps, 100)
  return c


def test_a_short_run_classifies_test_digits_and_saves_its_labels(mnist_dir, tfds_dir, tmp_path):
  c = _tiny(mnist_dir, tfds_dir, 300)
  final = train.train_and_evaluate(c, str(tmp_path / 'run'))
  saved = json.loads((tmp_path / 'run' / 'labelled_indices.json').read_text())
  exp = train.setup(c)
  np.testing.assert_array_equal(saved['indices'], exp.labelled)
  before = game_metrics.semi_supervised_metrics(exp, exp.init_state, {}, 'test')
  after = game_metrics.semi_supervised_metrics(exp, final, {}, 'test')
  assert before['classification_error_rate'] > 0.8 and after['classification_error_rate'] < 0.4, (before, after)
  # the training log follows D's error on the validation split as it falls
  history = [json.loads(line) for line in (tmp_path / 'run' / 'eval_history.jsonl').read_text().splitlines()]
  logged = [h['valid/classification_error_rate'] for h in history]
  assert len(logged) == 3 and logged[-1] < 0.4 and logged[-1] < logged[0], logged
  assert all(0 <= h['valid/raw_d/classification_error_rate'] <= 1 for h in history)  # the raw D beside its average


def test_semi_supervised_run_resumed_equals_uninterrupted_bit_for_bit(mnist_dir, tfds_dir, tmp_path):
  whole = train.train_and_evaluate(_tiny(mnist_dir, tfds_dir, 20), str(tmp_path / 'whole'))
  train.train_and_evaluate(_tiny(mnist_dir, tfds_dir, 10), str(tmp_path / 'split'))
  resumed = train.train_and_evaluate(_tiny(mnist_dir, tfds_dir, 20), str(tmp_path / 'split'))
  chex.assert_trees_all_equal(whole, resumed)


@pytest.mark.compile_bound
def test_one_device_equals_four_devices():
  """Feature matching matches the global batch's mean features: three steps on 4 devices (each
  with a quarter of the data, the labelled examples split alike) equal three steps on 1."""
  from gan_jax import models
  from gan_jax.optim import make_optimizer
  c = tiny_paper_config(mnist_semi_supervised.get_config())
  shape = (28, 28, 1)
  g, d = models.make_models(c.model, shape)
  spec = step.GANSpec(g, d, make_optimizer(c.optim.g, 500), make_optimizer(c.optim.d, 500),
                      noise_dim=c.model.noise_dim, noise=c.model.noise, game=semi_supervised.SemiSupervised())
  state = step.create_state(spec, 0, shape)
  rng = np.random.default_rng(0)
  batches = [{'image': rng.uniform(size=(1, 1, 32) + shape).astype(np.float32),  # [steps, k, b, ...]
              'labelled_image': rng.uniform(size=(1, 1, 8) + shape).astype(np.float32),
              'labelled_label': rng.integers(0, 10, (1, 1, 8)).astype(np.int32)} for _ in range(3)]
  results = {n: dispatches(spec, state, batches, n)[0] for n in (1, 4)}
  chex.assert_trees_all_close(results[1].g_params, results[4].g_params, rtol=1e-4, atol=1e-6)
  chex.assert_trees_all_close(results[1].d_params, results[4].d_params, rtol=1e-4, atol=1e-6)
