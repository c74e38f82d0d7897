"""The FID InceptionV3 without torch: architecture size, resize, score, weight files.

Equality with pytorch-fid itself (same random weights, pool3 and logits to ~1e-6) is checked by
benchmarks/inception_equivalence.py, which needs torch."""
import sys

import jax
import numpy as np
import pytest
import scipy.ndimage

from gan_jax.eval import inception

# From torch 2.13.0 / torchvision 0.28.0 / pytorch-fid 0.3.0, with the weight download skipped:
#   m = pytorch_fid.inception.fid_inception_v3()
#   sum(p.numel() for p in m.parameters())                                 -> 23_850_960
#   sum(b.numel() for n, b in m.named_buffers() if 'num_batches' not in n) -> 34_432 (BN mean + var)
#   len(m.state_dict()) - 94 num_batches_tracked counters                  -> 472 arrays
TORCH_PARAMETERS, TORCH_BN_STATISTICS, TORCH_ARRAYS = 23_850_960, 34_432, 472
# a few (name, torch shape) of that state dict, OIHW for convolutions
TORCH_SHAPES = {'Conv2d_1a_3x3.conv.weight': (32, 3, 3, 3), 'Mixed_6b.branch7x7_2.conv.weight': (128, 128, 1, 7),
                'Mixed_7c.branch3x3dbl_3b.conv.weight': (384, 384, 3, 1), 'Mixed_7c.branch_pool.bn.running_var': (192,),
                'fc.weight': (1008, 2048), 'fc.bias': (1008,)}


def _torch_layout(flat_name, shape):
  """The torch name and shape of a flat flax name (the inverse of the conversion, written here)."""
  collection, *path, leaf = flat_name.split('/')
  if leaf == 'kernel' and path[-1] == 'conv':
    return '.'.join(path + ['weight']), (shape[3], shape[2], shape[0], shape[1])
  if leaf == 'kernel':
    return 'fc.weight', shape[::-1]
  torch_leaf = {('params', 'scale'): 'weight', ('params', 'bias'): 'bias',
                ('batch_stats', 'mean'): 'running_mean', ('batch_stats', 'var'): 'running_var'}[collection, leaf]
  return '.'.join(path + [torch_leaf]), shape


@pytest.fixture(scope='module')
def random_state_dict():
  """A torch-layout state dict (numpy arrays) with random values, counters included."""
  rng = np.random.default_rng(0)
  sd = {}
  for flat_name, shape in inception._expected_shapes().items():
    name, torch_shape = _torch_layout(flat_name, shape)
    if name.endswith('running_var'):
      sd[name] = 0.5 + rng.random(torch_shape, np.float32)
      sd[name.replace('running_var', 'num_batches_tracked')] = np.array(7)  # to be ignored
    else:
      sd[name] = rng.standard_normal(torch_shape, np.float32) * (0.05 if 'conv' in name else 0.2)
  return sd


def test_size_equals_pytorch_fids():
  shapes = inception._expected_shapes()
  count = lambda prefix: sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith(prefix))
  assert (count('params/'), count('batch_stats/'), len(shapes)) == (TORCH_PARAMETERS, TORCH_BN_STATISTICS, TORCH_ARRAYS)
  torch_shapes = dict(_torch_layout(k, s) for k, s in shapes.items())
  assert {k: torch_shapes[k] for k in TORCH_SHAPES} == TORCH_SHAPES


@pytest.mark.compile_bound
def test_body_at_75x75(random_state_dict):
  variables = inception._unflatten(inception.convert_state_dict(random_state_dict), 'test')
  x = np.random.default_rng(1).random((2, 75, 75, 3), np.float32)
  apply = jax.jit(lambda v, x: inception.InceptionV3().apply(v, x, resize=False))
  pool3, logits = apply(variables, x)
  assert pool3.shape == (2, 2048) and logits.shape == (2, 1008)
  assert np.all(np.isfinite(logits)) and np.all(pool3 >= 0)  # a mean of ReLU maps
  np.testing.assert_allclose(logits, pool3 @ variables['params']['fc']['kernel'] + variables['params']['fc']['bias'],
                             rtol=1e-5, atol=1e-5)


@pytest.mark.compile_bound
def test_features_grey_padded_batches(random_state_dict):
  variables = inception._unflatten(inception.convert_state_dict(random_state_dict), 'test')
  grey = np.random.default_rng(2).random((3, 8, 8, 1), np.float32)
  pool3, logits = inception.features(variables, grey, batch_size=2)  # 2 batches, the last padded
  assert pool3.shape == (3, 2048) and logits.shape == (3, 1008) and pool3.dtype == np.float64
  rgb_pool3, _ = inception.features(variables, np.repeat(grey, 3, -1)[::-1], batch_size=2)
  np.testing.assert_allclose(rgb_pool3[::-1], pool3, rtol=1e-5, atol=1e-6)  # order and padding don't matter
  # default logits are the IS ones: pool3 @ W, without the fc bias
  np.testing.assert_allclose(logits, pool3 @ np.asarray(variables['params']['fc']['kernel'], np.float64),
                             rtol=1e-4, atol=1e-5)
  with pytest.raises(TypeError):
    inception.features(variables, (grey * 255).astype(np.uint8))


@pytest.mark.parametrize('shape', [(1, 5, 7, 1), (1, 310, 305, 3)])
def test_preprocess_is_torch_bilinear(shape):
  """Torch's bilinear, align_corners=False: source pixel (i + 0.5) * in / out - 0.5, clamped to
  the edge, 2 taps even when shrinking; here through scipy's linear interpolation."""
  x = np.random.default_rng(3).random(shape, np.float32)
  src = [(np.arange(299) + 0.5) * n / 299 - 0.5 for n in shape[1:3]]
  rows, cols = np.meshgrid(*src, indexing='ij')
  want = np.stack([scipy.ndimage.map_coordinates(x[0, :, :, c].astype(np.float64), [rows, cols],
                                                 order=1, mode='nearest') for c in range(shape[3])], -1)
  want = np.broadcast_to(want, (299, 299, 3))
  got = np.asarray(inception.preprocess(x))
  assert got.shape == (1, 299, 299, 3)
  # float32 source coordinates (as in torch and jax) are off by up to 3e-5 pixels near 300; an
  # antialiased (widened) kernel would miss by ~0.1 on these random pixels
  np.testing.assert_allclose(got[0], 2 * want - 1, atol=2e-6 if max(shape) < 100 else 1e-4)


def test_inception_score_known_answers():
  assert inception.inception_score(np.zeros((50, 1008))) == pytest.approx((1.0, 0.0))  # uniform: 1
  confident = 60.0 * np.eye(1008)[:40]  # 40 samples, 40 distinct classes, near one-hot
  assert inception.inception_score(confident, splits=1) == pytest.approx((40.0, 0.0), rel=1e-9)
  # in order, 4 splits of 10 distinct classes each score 10
  assert inception.inception_score(confident, splits=4, shuffle_seed=None) == pytest.approx((10.0, 0.0), rel=1e-9)
  # two classes, each predicted with p = 0.9 by half the samples: exp(KL(p || (0.5, 0.5)))
  two = np.zeros((2, 1008))
  two[0, :2], two[1, :2] = [np.log(0.9), np.log(0.1)], [np.log(0.1), np.log(0.9)]
  two[:, 2:] = -50.0  # probability ~1e-22
  want = np.exp(0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5))
  assert inception.inception_score(two, splits=1)[0] == pytest.approx(want, rel=1e-12)


def test_pth_and_npz_round_trip(random_state_dict, tmp_path, monkeypatch):
  monkeypatch.setattr(inception, '_torch_state_dict', lambda path: random_state_dict)  # torch.load's stand-in
  variables = inception.load_params(str(tmp_path / 'w.pth'))
  p, s = variables['params'], variables['batch_stats']
  sd = random_state_dict
  np.testing.assert_array_equal(p['Mixed_6b']['branch7x7_2']['conv']['kernel'],
                                sd['Mixed_6b.branch7x7_2.conv.weight'].transpose(2, 3, 1, 0))  # OIHW -> HWIO
  np.testing.assert_array_equal(p['fc']['kernel'], sd['fc.weight'].T)
  np.testing.assert_array_equal(p['Mixed_5b']['branch_pool']['bn']['scale'], sd['Mixed_5b.branch_pool.bn.weight'])
  np.testing.assert_array_equal(s['Mixed_5b']['branch_pool']['bn']['var'], sd['Mixed_5b.branch_pool.bn.running_var'])
  inception.main(['--convert', str(tmp_path / 'w.pth'), str(tmp_path / 'w.npz')])
  from_npz = inception.load_params(str(tmp_path / 'w.npz'))
  assert jax.tree_util.tree_structure(from_npz) == jax.tree_util.tree_structure(variables)
  jax.tree_util.tree_map(np.testing.assert_array_equal, from_npz, variables)


def test_wrong_weights_are_refused(random_state_dict, tmp_path):
  missing = {k: v for k, v in random_state_dict.items() if k != 'fc.bias'}
  with pytest.raises(ValueError, match='1 missing'):
    inception._unflatten(inception.convert_state_dict(missing), 'w')
  with pytest.raises(ValueError, match='AuxLogits'):  # torchvision's Inception, not the FID one
    inception.convert_state_dict({**random_state_dict, 'AuxLogits.fc.weight': np.zeros((1000, 768))})
  np.savez(tmp_path / 'bad.npz', **{'params/fc/kernel': np.zeros((2048, 1000), np.float32)})
  with pytest.raises(ValueError, match='not the FID InceptionV3'):
    inception.load_params(str(tmp_path / 'bad.npz'))


def test_pth_without_torch_says_convert(monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # `import torch` fails, installed or not
  with pytest.raises(ImportError, match='--convert'):
    inception.load_params('pt_inception-2015-12-05-6726825d.pth')
