"""Evaluation: the Parzen estimator against brute force, its ceiling on real MNIST, the sample
metrics on cases with known answers, and --mode=eval / --mode=sample on a real short run."""
import json
import math
import os
import sys

import jax
import numpy as np
import pytest

from gan_jax import data
from gan_jax.eval import metrics, parzen
from gan_jax.data import synthetic
from gan_jax.errors import UserError
from tests import launcher
from tests.conftest import ROOT, flat_draw, tiny_paper_config


def brute_force_parzen(points, samples, sigma):
  points, samples = points.astype(np.float64), samples.astype(np.float64)
  out = []
  for x in points:
    e = -((x - samples) ** 2).sum(1) / (2 * sigma ** 2)
    m = e.max()
    out.append(m + math.log(np.exp(e - m).mean()) - points.shape[1] * math.log(sigma * math.sqrt(2 * math.pi)))
  return np.array(out)


def test_parzen_matches_brute_force():
  rng = np.random.default_rng(0)
  samples = rng.uniform(size=(300, 20)).astype(np.float32)
  points = rng.uniform(size=(37, 20)).astype(np.float32)
  sigmas = parzen.SIGMAS
  ours = parzen.log_likelihoods(points, samples, sigmas, chunk=16)  # several chunks, one padded
  for i, s in enumerate(sigmas):
    np.testing.assert_allclose(ours[i], brute_force_parzen(points, samples, s), rtol=1e-4, atol=1e-3)


def test_parzen_protocol_picks_sigma_on_validation():
  rng = np.random.default_rng(1)
  samples, valid, test = (rng.normal(0.5, 0.3, size=(n, 10)).astype(np.float32) for n in (500, 100, 200))
  result = parzen.evaluate(samples, valid, test)
  valid_means = [brute_force_parzen(valid, samples, s).mean() for s in parzen.SIGMAS]
  assert result['parzen_sigma'] == pytest.approx(parzen.SIGMAS[int(np.argmax(valid_means))])
  test_ll = brute_force_parzen(test, samples, result['parzen_sigma'])
  assert result['parzen_ll'] == pytest.approx(test_ll.mean(), rel=1e-4)
  assert result['parzen_se'] == pytest.approx(test_ll.std() / math.sqrt(len(test)), rel=1e-3)


def test_parzen_ceiling_real_mnist_training_images(mnist_dir, tfds_dir):
  """10,000 real training images as "samples": what a perfect memoriser would score."""
  from configs import mnist
  c = mnist.get_config()
  c.data.manual_dir, c.data.data_dir = mnist_dir, tfds_dir
  # only the images scored are decoded: all 60,000 take ~2x as long as the evaluation itself
  samples, valid, test = (data.load_unit_split(c.data, s)[0] for s in ('train[:10000]', 'train[50000:51000]', 'test'))
  result = parzen.evaluate(samples, valid, test)
  print(f"Parzen ceiling (10k real training images): {result['parzen_ll']:.1f} ± {result['parzen_se']:.1f}, "
        f"sigma {result['parzen_sigma']:.3f}, {result['parzen_seconds']:.1f} s")
  assert np.isfinite(result['parzen_ll']) and 200 < result['parzen_ll'] < 300
  assert result['parzen_seconds'] < 60


def test_frechet_distance_known_values():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(20000, 4))
  assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
  shift = np.array([1.0, -2.0, 0.5, 0.0])
  # same covariance, shifted mean: the distance is ‖shift‖²
  assert metrics.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
  # N(0, I) vs N(0, 4I) in 4 dims: Tr(I + 4I - 2·2I) = 4
  assert metrics.frechet_distance(rng.normal(size=(200000, 4)), 2 * rng.normal(size=(200000, 4))) == pytest.approx(4.0, rel=0.03)


def test_kernel_inception_distance_against_a_direct_computation():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(40, 5)), rng.normal(size=(50, 5)) + 0.3
  mean, std = metrics.kernel_inception_distance(a, b, num_subsets=3, subset_size=12, seed=7)
  # the same subsets, the unbiased MMD² written out pair by pair
  draw, d, estimates = np.random.default_rng(7), 5, []
  k = lambda u, v: (sum(ui * vi for ui, vi in zip(u, v)) / d + 1) ** 3
  for _ in range(3):
    x, y = a[draw.choice(40, 12, replace=False)], b[draw.choice(50, 12, replace=False)]
    pairs = [(i, j) for i in range(12) for j in range(12) if i != j]
    estimates.append(sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in pairs) / len(pairs)
                     - 2 * sum(k(x[i], y[j]) for i in range(12) for j in range(12)) / 144)
  assert mean == pytest.approx(np.mean(estimates), rel=1e-10) and std == pytest.approx(np.std(estimates), rel=1e-10)
  # one distribution: near 0 (unbiased, either sign); a shifted one: far above its spread
  same = metrics.kernel_inception_distance(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)), 20, 500)
  shifted = metrics.kernel_inception_distance(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)) + 0.5, 20, 500)
  assert abs(same[0]) < 3 * same[1] and shifted[0] > 10 * shifted[1] > 0, (same, shifted)
  with pytest.raises(UserError, match='KID compares subsets of 1000 features, but one set has only 500'):
    metrics.kernel_inception_distance(rng.normal(size=(500, 8)), rng.normal(size=(2000, 8)))


def test_classifier_score_and_coverage_known_values():
  one_hot = np.eye(10)[np.arange(1000) % 10]
  assert metrics.classifier_score(one_hot) == pytest.approx(10.0, rel=1e-6)
  assert metrics.classes_covered(one_hot) == 10
  collapsed = np.eye(10)[np.zeros(1000, int)]
  assert metrics.classifier_score(collapsed) == pytest.approx(1.0, rel=1e-6)
  assert metrics.classes_covered(collapsed) == 1


def _brute_force_pr(real, fake, k):
  """Improved precision/recall and coverage straight from their definitions, point by point."""
  def radii(x):
    return [sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)[k - 1] for i in range(len(x))]
  r_real, r_fake = radii(real), radii(fake)
  precision = np.mean([any(np.linalg.norm(f - real[i]) <= r_real[i] for i in range(len(real))) for f in fake])
  recall = np.mean([any(np.linalg.norm(r - fake[j]) <= r_fake[j] for j in range(len(fake))) for r in real])
  coverage = np.mean([min(np.linalg.norm(real[i] - f) for f in fake) <= r_real[i] for i in range(len(real))])
  return precision, recall, coverage


def test_precision_recall_coverage_match_their_definitions():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(70, 6)), rng.normal(0.6, 0.7, size=(55, 6))
  got = metrics.precision_recall_coverage(real, fake, k=3)
  want = _brute_force_pr(real, fake, 3)
  assert (got['precision'], got['recall'], got['coverage']) == pytest.approx(want, abs=1e-9), (got, want)
  assert 0.1 < want[0] < 0.95 and 0.1 < want[1] < 0.95  # a case that separates the three numbers
  same = metrics.precision_recall_coverage(real, real, k=3)
  assert same == {'precision': 1.0, 'recall': 1.0, 'coverage': 1.0}
  far = metrics.precision_recall_coverage(real, fake + 100.0, k=3)
  assert far == {'precision': 0.0, 'recall': 0.0, 'coverage': 0.0}


def test_memorisation_finds_copies_of_training_images():
  rng = np.random.default_rng(1)
  train = rng.uniform(size=(500, 8, 8, 1)).astype(np.float32)
  test = rng.uniform(size=(100, 8, 8, 1)).astype(np.float32)
  copies = train[:40] + rng.normal(0, 1e-3, size=(40, 8, 8, 1)).astype(np.float32)
  samples = np.concatenate([copies, rng.uniform(size=(60, 8, 8, 1)).astype(np.float32)])
  nearest = metrics.nearest_distances(samples, np.array_split(train, 7))
  brute = np.array([np.min(np.linalg.norm((train - s).reshape(len(train), -1), axis=1)) for s in samples])
  # float32 ‖a‖² + ‖b‖² - 2a·b: ~1e-3 absolute error at distance ~0 (norms ~4.6), far below the
  # gap between copies (0.008) and new images (~2)
  np.testing.assert_allclose(nearest, brute, rtol=1e-4, atol=2e-3)
  to_test = metrics.nearest_distances(test, [train])
  m = metrics.memorisation(nearest, to_test)
  assert m['near_copy_fraction'] == pytest.approx(0.4, abs=0.02) and m['nn_train_distance_ratio'] < 1.0
  fresh = metrics.memorisation(nearest[40:], to_test)
  assert fresh['near_copy_fraction'] < 0.05 and 0.8 < fresh['nn_train_distance_ratio'] < 1.25


def test_classifier_pooling_equals_flax_max_pool_in_value_and_gradient():
  """The classifier's 2×2 pooling against nn.max_pool: the same maxima, and the gradient reaching
  each window's largest input (random inputs, no ties)."""
  import flax.linen as nn
  from gan_jax.eval import classifier
  x = flat_draw(jax.random.normal, jax.random.PRNGKey(0), (3, 8, 6, 5))
  weights = flat_draw(jax.random.normal, jax.random.PRNGKey(1), (3, 4, 3, 5))
  ours, flax_pool = classifier.max_pool_2x2, lambda v: nn.max_pool(v, (2, 2), (2, 2))
  np.testing.assert_array_equal(ours(x), flax_pool(x))
  grad = lambda pool: jax.grad(lambda v: (pool(v) * weights).sum())(x)
  np.testing.assert_array_equal(grad(ours), grad(flax_pool))


def test_ring_mode_metrics():
  modes = synthetic.ring2d_modes()
  full = metrics.ring_modes(synthetic.sample('ring2d', 8000, seed=0), modes, 0.02)
  # in 2-D, P(r < 3σ) = 1 - exp(-9/2) = 0.9889
  assert full['modes_covered'] == 8 and abs(full['high_quality_fraction'] - (1 - math.exp(-4.5))) < 0.005
  collapsed = metrics.ring_modes(np.repeat(modes[:1], 100, axis=0) + 0.01, modes, 0.02)
  assert collapsed['modes_covered'] == 1
  assert metrics.ring_modes(np.zeros((100, 2)), modes, 0.02)['high_quality_fraction'] == 0.0


def test_non_finite_samples_are_refused_not_scored():
  from configs import ring2d
  from gan_jax import train
  from gan_jax.eval import evaluate
  c = ring2d.get_config()
  c.mesh.num_devices = 1
  exp = train.setup(c)
  assert np.all(np.isfinite(evaluate.generate(exp, exp.init_state.g_params, 10, 0)))
  broken = jax.tree.map(lambda a: np.full_like(a, np.nan), exp.init_state.g_params)
  with pytest.raises(UserError, match='non-finite values'):
    evaluate.generate(exp, broken, 10, 0)


# held-out splits of 3,000 (σ is still chosen on 1,000), and a training split of the 12,000 images
# the classifier trains on: each memorisation pass (every query against every training image) a
# quarter of the full split's
TRAIN, VALID, TEST = 'train[:12000]', 'train[50000:53000]', 'test[:3000]'


def launch(workdir, mode, extra):
  return launcher.run([sys.executable, 'launch.py', '--config=configs/mnist.py', f'--workdir={workdir}',
                         f'--mode={mode}', *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_eval_and_sample_modes_on_a_short_mnist_run(mnist_dir, tfds_dir, tmp_path):
  extra = [f'--config.data.manual_dir={mnist_dir}', f'--config.data.data_dir={tfds_dir}',
           '--config.train.num_steps=20', '--config.eval_every_steps=10', '--config.log_every_steps=10',
           '--config.checkpoint_every_steps=10',
           '--config.model.g_kwargs.hidden=256', '--config.model.d_kwargs.units=64',
           f'--config.eval.classifier_path={tmp_path / "clf.msgpack"}', '--config.eval.classifier_epochs=1',
           '--config.eval.classifier_examples=12000',
           '--config.eval.num_samples=2000', '--config.sample.num_samples=50',
           f'--config.data.train_split={TRAIN}', f'--config.data.valid_split={VALID}',
           f'--config.data.eval_split={TEST}']
  r = launch(tmp_path / 'wd', 'train', extra)
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'parzen_valid_ll_cheap' in r.stderr  # the periodic, cheap evaluation
  # resumed with every metric at each evaluation, on the validation split; at the end, the final
  # checkpoint once on the test split (eval.at_end, as configs/mnist_table1.py) and its Table 1 row
  full = extra + ['--config.train.num_steps=30', '--config.eval.periodic_parzen=full', '--config.eval.at_end=True']
  r = launch(tmp_path / 'wd', 'train', full)
  assert r.returncode == 0, r.stderr[-2000:]
  rows = [json.loads(line) for line in (tmp_path / 'wd' / 'eval_history.jsonl').read_text().splitlines()]
  assert [row['step'] for row in rows] == [10, 20, 30]
  assert 'valid/parzen_ll' not in rows[1] and 'test/parzen_ll' not in rows[2]
  result = json.loads((tmp_path / 'wd' / 'eval.json').read_text())
  assert result['step'] == 30 and result['num_samples'] == 2000 and result['split'] == 'test'
  table1 = r.stdout[r.stdout.index('Table 1, mnist'):]
  assert 'Adversarial nets (paper)  225 ± 2' in table1
  assert f'step 30, {result["train_minutes"]:.1f} training minutes  {result["parzen_ll"]:.1f} ± {result["parzen_se"]:.1f}' in table1
  assert f'classifier FD {result["frechet_distance"]:.1f}' in table1
  assert 'first evaluation trains the evaluation classifier once before it scores' in r.stderr
  # --mode=eval on an earlier checkpoint: the same protocol, without orbax's read-only notices
  r = launch(tmp_path / 'wd', 'eval', extra + ['--step=20'])
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'read only' not in r.stderr and 'read_only' not in r.stderr
  assert json.loads((tmp_path / 'wd' / 'eval.json').read_text())['step'] == 20
  assert 'Parzen (paper: GAN 225±2)' in r.stdout
  assert np.isfinite(result['parzen_ll']) and result['parzen_se'] > 0
  assert result['classifier_accuracy'] > 0.9 and result['frechet_distance'] > 0
  assert 1 <= result['classifier_score'] <= 10 and 1 <= result['classes_covered'] <= 10
  for key in ('precision', 'recall', 'coverage', 'near_copy_fraction', 'nn_train_distance_ratio'):
    assert 0.0 <= result[key] <= (1.0 if key != 'nn_train_distance_ratio' else 10.0), (key, result[key])
  assert os.path.exists(tmp_path / 'clf.msgpack')  # cached where the config says
  r = launch(tmp_path / 'wd', 'sample', extra + ['--step=10'])
  assert r.returncode == 0, r.stderr[-2000:]
  for name in ('sample_step_0000010.png', 'figure2_step_0000010.png', 'figure3_step_0000010.png'):
    assert os.path.exists(tmp_path / 'wd' / 'samples' / name), name
  npz = np.load(tmp_path / 'wd' / 'samples' / 'samples_step_0000010.npz')
  assert npz['images'].dtype == np.uint8 and npz['images'].shape == (50, 28, 28, 1)
  assert 20 < npz['images'].mean() < 235 and str(npz['generator']) == 'eval'
  _validation_history_and_known_answers(mnist_dir, tfds_dir, tmp_path, rows[2], result)


def _validation_history_and_known_answers(mnist_dir, tfds_dir, tmp_path, row, on_test):
  """The periodic row at step 30 is the protocol on the validation split (the same numbers as
  evaluate_samples(..., 'valid') of that checkpoint; σ chosen there as on test, other numbers
  not the test split's). Then numbers with known answers, with the classifier trained above:
  2,000 held-out real images as 'samples' score like the test set (Fréchet distance near 0,
  precision and recall high, no near copies); noise is far."""
  from configs import mnist
  from gan_jax import step, train
  from gan_jax.errors import UserError
  from gan_jax.eval import evaluate
  c = tiny_paper_config(mnist.get_config())
  c.model.g_kwargs.hidden, c.model.d_kwargs.units = 256, 64
  c.data.manual_dir, c.data.data_dir, c.mesh.num_devices = mnist_dir, tfds_dir, 1
  c.data.train_split, c.data.valid_split, c.data.eval_split = TRAIN, VALID, TEST
  c.eval.classifier_path, c.eval.classifier_examples, c.eval.num_samples = str(tmp_path / 'clf.msgpack'), 12000, 2000
  exp = train.setup(c, training=False)
  with pytest.raises(UserError, match='no checkpoint in .*; train first'):
    evaluate.load_state(exp, str(tmp_path / 'empty'))
  state, _ = evaluate.load_state(exp, str(tmp_path / 'wd'), 30)
  cache = {}
  samples = evaluate.generate(exp, step.sampling_params(state), 2000, c.seed + 1)
  on_valid = evaluate.evaluate_samples(exp, samples, cache, 'valid')
  for key in ('parzen_ll', 'parzen_sigma', 'frechet_distance', 'precision', 'recall', 'near_copy_fraction'):
    assert row[f'valid/{key}'] == pytest.approx(on_valid[key], rel=1e-6), key
  assert on_test['parzen_sigma'] == on_valid['parzen_sigma']
  assert on_test['parzen_ll'] != on_valid['parzen_ll'] and on_test['frechet_distance'] != on_valid['frechet_distance']
  held_out, held_out_labels = data.load_unit_split(c.data, 'train[56000:58000]')  # held out, in no split used
  real = evaluate.evaluate_samples(exp, held_out, cache, 'test', sample_labels=held_out_labels)
  # as a conditional G's samples: right classes score like the classifier, each class matching
  # its own test images; the same images asked for the next class score near 0 and far
  assert real['conditional_accuracy'] > 0.9 and min(real[f'conditional_accuracy/{c}'] for c in range(10)) > 0.8, real
  wrong = evaluate.evaluate_samples(exp, held_out, cache, 'test', sample_labels=(held_out_labels + 1) % 10)
  assert wrong['conditional_accuracy'] < 0.05 and wrong['frechet_distance'] == real['frechet_distance']
  assert wrong['class_conditional_fd'] > 10 * real['class_conditional_fd'], (wrong, real)
  assert real['frechet_distance'] < 1.0 and real['precision'] > 0.8 and real['recall'] > 0.8, real  # k-NN balls of 2,000: not 1
  assert real['near_copy_fraction'] < 0.03 and 0.9 < real['nn_train_distance_ratio'] < 1.1, real
  noise = evaluate.evaluate_samples(exp, np.random.default_rng(0).uniform(size=held_out.shape).astype(np.float32),
                                    cache, 'test')
  assert noise['frechet_distance'] > 100 * max(real['frechet_distance'], 0.1) and noise['precision'] < 0.05, noise
