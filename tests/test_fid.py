"""FID and Inception Score in --mode=eval (gan_jax/fid.py): the numbers against a direct
computation, the cached reference statistics, the errors for wrong weights, and the wiring.

Random weights stand in for pytorch-fid's (not downloadable here). They are He-scaled with
identity batch norms so that pool3 still depends on the image; the test_inception.py state dict
(small weights, random BN statistics) maps every image to the same features within 1e-9."""
import os
import sys
import types

import numpy as np
import pytest

from configs import mnist, ring2d
from gan_jax.eval import evaluate, fid, inception, metrics
from gan_jax.errors import UserError
from gan_jax.validate import validate_config
from tests import launcher
from tests.conftest import ROOT

BATCH = 10  # one batch size in every call: one compiled program for the whole file


@pytest.fixture(scope='module')
def weights_path(tmp_path_factory):
  rng = np.random.default_rng(0)
  flat = {}
  for name, shape in inception._expected_shapes().items():
    if name == 'params/fc/kernel':
      flat[name] = rng.standard_normal(shape, np.float32) * 0.3
    elif name.endswith('/kernel'):
      flat[name] = rng.standard_normal(shape, np.float32) * np.sqrt(2.0 / np.prod(shape[:-1]))
    elif name.endswith(('/scale', '/var')):
      flat[name] = np.ones(shape, np.float32)
    else:
      flat[name] = np.zeros(shape, np.float32)
  path = str(tmp_path_factory.mktemp('weights') / 'random_inception.npz')
  inception.save_npz(inception._unflatten(flat, 'random'), path)
  return path


@pytest.fixture(scope='module')
def network(weights_path):
  return fid.load_network(weights_path)


def _images(seed, low, high, n=BATCH):
  return np.random.default_rng(seed).uniform(low, high, (n, 28, 28, 1)).astype(np.float32)


def _trace_sqrt_product(a, b):
  """Tr((Σa Σb)^½) without a matrix square root: with centred rows X, Y, the nonzero eigenvalues
  of Σa Σb are the squared singular values of X Yᵀ / √((n-1)(m-1))."""
  x, y = a - a.mean(0), b - b.mean(0)
  return np.linalg.svd(x @ y.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))


def test_fid_compares_the_features_of_samples_and_reference(network, tmp_path, monkeypatch):
  """The Gaussians the Fréchet distance gets are those of features computed directly. (The
  distance itself, a 2048x2048 matrix square root taking ~45 s here, is checked below on small
  low-rank cases and against pytorch-fid in benchmarks/inception_equivalence.py.)"""
  reference, samples = _images(1, 0.0, 0.5), _images(2, 0.4, 1.0)
  mu, cov = fid.reference_stats(network, reference, str(tmp_path / 'stats.npz'), batch_size=BATCH)
  compared = []
  monkeypatch.setattr(metrics, 'frechet_distance_of_gaussians', lambda *a: compared.append(a) or 123.0)
  got = fid.scores(network, samples, (mu, cov), batch_size=BATCH)
  ref_pool3, _ = inception.features(network.variables, reference, batch_size=BATCH)
  pool3, _ = inception.features(network.variables, samples, batch_size=BATCH)
  assert np.abs(pool3.mean(0) - ref_pool3.mean(0)).max() > 0.1  # features that tell the sets apart
  (mu_s, cov_s, mu_r, cov_r), = compared
  for got_array, want in ((mu_s, pool3.mean(0)), (cov_s, np.cov(pool3, rowvar=False)),
                          (mu_r, ref_pool3.mean(0)), (cov_r, np.cov(ref_pool3, rowvar=False))):
    np.testing.assert_allclose(got_array, want, rtol=1e-9, atol=1e-15)
  assert got['fid'] == 123.0 and got['fid_num_samples'] == BATCH


def test_frechet_distance_of_few_samples_equals_the_low_rank_formula():
  """FID on fewer samples than dimensions (singular covariances) against an exact formula that
  needs no matrix square root."""
  rng = np.random.default_rng(8)
  a, b = rng.normal(size=(12, 64)), rng.normal(0.3, 1.5, size=(9, 64))
  want = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(np.cov(a, rowvar=False))
          + np.trace(np.cov(b, rowvar=False)) - 2 * _trace_sqrt_product(a, b))
  assert metrics.frechet_distance_of_gaussians(*metrics.gaussian(a), *metrics.gaussian(b)) == pytest.approx(want, rel=1e-7)
  assert metrics.frechet_distance(a, b) == pytest.approx(want, rel=1e-7)


@pytest.fixture
def counted_features(monkeypatch):
  """inception.features replaced by a fast stand-in (pool3: the pixels, tiled) that records the
  images it is given: the cache's behaviour does not depend on the network."""
  calls = []
  def fake(params, images, batch_size=50, fc_bias=False):
    calls.append(len(images))
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return np.resize(flat, (len(images), fid.POOL3)), np.zeros((len(images), inception.NUM_CLASSES))
  monkeypatch.setattr(inception, 'features', fake)
  return calls


def test_reference_statistics_are_computed_once_then_read(counted_features, tmp_path):
  calls, network = counted_features, fid.Network({}, 'ab' * 32)
  path, images = str(tmp_path / 'cache' / 'stats.npz'), _images(3, 0.0, 1.0)
  first = fid.reference_stats(network, images, path, batch_size=BATCH)
  assert calls == [BATCH] and os.listdir(tmp_path / 'cache') == ['stats.npz']  # no temporary left
  np.testing.assert_allclose(first[0], np.resize(images.reshape(BATCH, -1), (BATCH, fid.POOL3)).mean(0), rtol=1e-6)
  written = os.stat(path).st_mtime_ns
  again = fid.reference_stats(network, images, path, batch_size=BATCH)
  assert calls == [BATCH] and os.stat(path).st_mtime_ns == written  # read, not recomputed
  np.testing.assert_array_equal(again[0], first[0])
  np.testing.assert_array_equal(again[1], first[1])
  # under the same name, other images (a changed split) or other weights: stale, computed again
  other = fid.reference_stats(network, images[::-1] * 0.5, path, batch_size=BATCH)
  assert len(calls) == 2 and not np.allclose(other[0], first[0])
  fid.reference_stats(fid.Network({}, 'cd' * 32), images[::-1] * 0.5, path, batch_size=BATCH)
  assert len(calls) == 3


def test_corrupt_statistics_are_recomputed(counted_features, tmp_path):
  calls, network = counted_features, fid.Network({}, 'ab' * 32)
  path, images = str(tmp_path / 'stats.npz'), _images(4, 0.0, 1.0)
  good = fid.reference_stats(network, images, path, batch_size=BATCH)
  valid_bytes = open(path, 'rb').read()
  for damaged in (b'not an npz', valid_bytes[:len(valid_bytes) // 2]):  # garbage, a cut-off write
    with open(path, 'wb') as f:
      f.write(damaged)
    mu, cov = fid.reference_stats(network, images, path, batch_size=BATCH)
    np.testing.assert_array_equal(mu, good[0])
    np.testing.assert_array_equal(cov, good[1])
    assert open(path, 'rb').read() == valid_bytes  # rewritten whole
  assert calls == [BATCH] * 3


def test_inception_score_is_of_the_samples_logits(monkeypatch):
  """The score of the logits the network gives the samples, in torch-fidelity's protocol. (With
  the real network, 10 splits need 20 samples, 2 per split, to score anything but 1: a stand-in
  with 8-d features keeps this fast.)"""
  samples = _images(6, 0.0, 1.0, 40)
  logits = np.random.default_rng(7).normal(0, 3, (40, inception.NUM_CLASSES))
  lookup = {float(x.sum()): i for i, x in enumerate(samples)}
  def fake(params, images, batch_size=50, fc_bias=False):
    rows = [lookup[float(x.sum())] for x in images]  # which samples, in which order
    return samples[rows].reshape(len(rows), -1)[:, :8].astype(np.float64), logits[rows]
  monkeypatch.setattr(inception, 'features', fake)
  got = fid.scores(fid.Network({}, 'ab' * 32), samples, (np.zeros(8), np.eye(8)), batch_size=BATCH)
  want = inception.inception_score(logits)
  assert want[0] > 2 and (got['inception_score'], got['inception_score_std']) == pytest.approx(want, rel=1e-12)


def test_wrong_weights_are_one_line_user_errors(weights_path, tmp_path):
  c = mnist.get_config()
  c.eval.inception_weights = str(tmp_path / 'absent.pth')
  with pytest.raises(UserError, match='absent.pth: no such file'):
    validate_config(c)
  c.eval.inception_weights = weights_path
  validate_config(c)
  r = ring2d.get_config()
  r.eval.inception_weights = weights_path
  with pytest.raises(UserError, match='ring2d has no images'):
    validate_config(r)
  (tmp_path / 'garbage.npz').write_bytes(b'\x00' * 100)
  np.savez(tmp_path / 'other.npz', **{'params/fc/kernel': np.zeros((2048, 1000), np.float32)})
  for name, reason in (('garbage.npz', 'not an .npz of arrays nor a torch file'), ('other.npz', 'not the FID InceptionV3')):
    with pytest.raises(UserError, match=f'{name} is not usable FID Inception weights: ') as e:
      fid.load_network(str(tmp_path / name))
    assert reason in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_launch_refuses_missing_weights_before_anything(tmp_path):
  r = launcher.run([sys.executable, 'launch.py', '--config=configs/mnist.py', '--mode=eval',
                      f'--workdir={tmp_path / "wd"}', f'--config.eval.inception_weights={tmp_path / "w.pth"}'],
                     cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2, r.stderr[-2000:]
  errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
  assert errors == [f'error: eval.inception_weights={tmp_path / "w.pth"}: no such file; give pytorch-fid\'s '
                    'pt_inception-2015-12-05-6726825d.pth, or the .npz that `python -m gan_jax.eval.inception '
                    '--convert` writes from it.']
  assert not os.path.exists(tmp_path / 'wd')


def _fake_experiment(fid_num_samples):
  """What evaluate.generate uses of an experiment: a 'G' whose images are the mean of z, in [-1, 1]."""
  c = mnist.get_config()
  c.data.scale, c.eval.fid_num_samples = 'symmetric', fid_num_samples
  sample = lambda params, z, labels=None: np.broadcast_to(np.tanh(z.mean(1))[:, None, None, None], (len(z), 28, 28, 1))
  spec = types.SimpleNamespace(noise_dim=4, noise='uniform', num_classes=0)
  return types.SimpleNamespace(config=c, spec=spec, sample=sample)


def test_evaluation_scores_the_configured_number_of_samples(monkeypatch):
  seen = {}
  monkeypatch.setattr(fid, 'reference_stats', lambda network, images, path: seen.update(ref=images, path=path) or 'stats')
  monkeypatch.setattr(fid, 'scores', lambda network, samples, reference: seen.update(samples=samples) or {'fid': 1.0})
  network, test = fid.Network({}, 'ab' * 32), _images(5, 0.0, 1.0, 30)
  assert evaluate.inception_metrics(_fake_experiment(12), None, np.zeros((12, 28, 28, 1)), {'test': test}) == {}

  exp = _fake_experiment(12)
  drawn = evaluate.generate(exp, None, 12, exp.config.seed + 1)  # what evaluate() scores by default
  cache = {'inception': network, 'test': test, 'test_labels': None}
  assert evaluate.inception_metrics(exp, None, drawn, cache) == {'fid': 1.0}
  np.testing.assert_array_equal(seen['samples'], (drawn + 1) / 2)  # the same samples, in [0, 1]
  assert seen['ref'] is test and cache['test_fid_reference'] == 'stats'
  assert seen['path'] == os.path.join(os.path.expanduser('~'), '.cache', 'gan_jax', 'fid_stats',
                                      f'mnist_test_28x28x1_{"ab" * 8}.npz')
  seen.clear()
  exp = _fake_experiment(20)  # more than evaluate() drew for Parzen: drawn anew, same seed
  evaluate.inception_metrics(exp, None, drawn, cache)
  assert 'ref' not in seen  # the statistics are read once per evaluation
  np.testing.assert_array_equal(seen['samples'], (evaluate.generate(exp, None, 20, exp.config.seed + 1) + 1) / 2)
  assert len(seen['samples']) == 20


def test_table_says_the_classifier_distance_is_not_fid():
  table = evaluate.format_table({'step': 1, 'frechet_distance': 3.0})
  assert 'not comparable with published FID (set eval.inception_weights' in table
  assert '(fid is)' in evaluate.format_table({'frechet_distance': 3.0, 'fid': 40.0})
