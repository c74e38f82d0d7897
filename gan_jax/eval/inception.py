"""The standard FID / Inception Score network: pytorch-fid's FID InceptionV3, layer for layer, in flax.

This is the network pytorch-fid builds with `use_fid_inception=True` (the 2015-12-05 TensorFlow
Inception graph the original FID and IS code used), so with the same weights its pool3 features
and logits equal pytorch-fid's (benchmarks/inception_equivalence.py). Inputs are NHWC in [0, 1],
any size, 1 or 3 channels; as in pytorch-fid they are resized to 299x299 (bilinear, half-pixel
centres, no antialiasing) and scaled to [-1, 1]. (torch-fidelity's extractor has the same layers
but reads uint8, scales by (x - 128) / 128 and resizes like TF1, so its numbers differ slightly.)

Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, which cannot be downloaded from
here. `load_params` reads it with torch when torch is installed, or reads an .npz converted from
it once, on a machine with torch:  python -m gan_jax.eval.inception --convert IN.pth OUT.npz
"""
import argparse
import functools

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

SIZE = 299
NUM_CLASSES = 1008  # the 2015 graph's softmax has 1008 outputs, more than ImageNet's 1000 classes
# full fp32 on every backend (JAX's default may use reduced-precision passes on accelerators), so
# the features do not depend on the device
_HIGHEST = jax.lax.Precision.HIGHEST


def _pair(v):
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """Convolution without bias, batch norm with the frozen (running) statistics, ReLU."""
  features: int
  kernel: int | tuple[int, int]
  strides: int = 1
  padding: int | tuple[int, int] = 0

  @nn.compact
  def __call__(self, x):
    ph, pw = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), _pair(self.strides), padding=((ph, ph), (pw, pw)),
                use_bias=False, precision=_HIGHEST, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)  # TF's epsilon, not torch's
    return nn.relu(x)


def _avg_pool_3x3(x):
  # TF's average pool divides by the pixels inside the image, not by 9, at the borders
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_down(x):
  return nn.max_pool(x, (3, 3), (2, 2))  # 'VALID', as torch's MaxPool2d(3, stride=2)


# Submodule names are torchvision's, so a torch state dict maps onto the flax tree name for name.
class InceptionA(nn.Module):
  """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b5 = BasicConv2d(48, 1, name='branch5x5_1')(x)
    b3 = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
    b3 = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2')(b3)
    return jnp.concatenate([
        BasicConv2d(64, 1, name='branch1x1')(x),
        BasicConv2d(64, 5, padding=2, name='branch5x5_2')(b5),
        BasicConv2d(96, 3, padding=1, name='branch3x3dbl_3')(b3),
        BasicConv2d(self.pool_features, 1, name='branch_pool')(_avg_pool_3x3(x))], axis=-1)


class InceptionB(nn.Module):
  """35x35 -> 17x17 reduction (Mixed_6a)."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
    b3 = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2')(b3)
    return jnp.concatenate([
        BasicConv2d(384, 3, strides=2, name='branch3x3')(x),
        BasicConv2d(96, 3, strides=2, name='branch3x3dbl_3')(b3),
        _max_pool_down(x)], axis=-1)


class InceptionC(nn.Module):
  """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b7 = BasicConv2d(c, 1, name='branch7x7_1')(x)
    b7 = BasicConv2d(c, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = BasicConv2d(c, 1, name='branch7x7dbl_1')(x)
    bd = BasicConv2d(c, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = BasicConv2d(c, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = BasicConv2d(c, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    return jnp.concatenate([
        BasicConv2d(192, 1, name='branch1x1')(x), b7, bd,
        BasicConv2d(192, 1, name='branch_pool')(_avg_pool_3x3(x))], axis=-1)


class InceptionD(nn.Module):
  """17x17 -> 8x8 reduction (Mixed_7a)."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, 1, name='branch3x3_1')(x)
    b7 = BasicConv2d(192, 1, name='branch7x7x3_1')(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    return jnp.concatenate([
        BasicConv2d(320, 3, strides=2, name='branch3x3_2')(b3),
        BasicConv2d(192, 3, strides=2, name='branch7x7x3_4')(b7),
        _max_pool_down(x)], axis=-1)


class InceptionE(nn.Module):
  """8x8 block whose 3x3 branches split into parallel 1x3 and 3x1 convolutions.

  The FID graph pools with an average in Mixed_7b but a max in Mixed_7c (pytorch-fid's
  FIDInceptionE_1 / FIDInceptionE_2), unlike torchvision's Inception."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, 1, name='branch3x3_1')(x)
    bd = BasicConv2d(448, 1, name='branch3x3dbl_1')(x)
    bd = BasicConv2d(384, 3, padding=1, name='branch3x3dbl_2')(bd)
    pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1))) if self.max_pool else _avg_pool_3x3(x)
    return jnp.concatenate([
        BasicConv2d(320, 1, name='branch1x1')(x),
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3),
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd),
        BasicConv2d(192, 1, name='branch_pool')(pooled)], axis=-1)


def preprocess(images, resize: bool = True):
  """NHWC in [0, 1] -> 3 channels, 299x299 as torch's bilinear (align_corners=False), in [-1, 1]."""
  x = jnp.asarray(images, jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)  # grayscale: the same plane as R, G and B
  if resize:
    # half-pixel centres, 2 taps: torch's interpolate(mode='bilinear'); jax's default antialias
    # would widen the kernel when shrinking an input larger than 299, and torch's does not
    x = jax.image.resize(x, x.shape[:1] + (SIZE, SIZE, 3), 'bilinear', antialias=False, precision=_HIGHEST)
  return 2.0 * x - 1.0


class InceptionV3(nn.Module):
  """(pool3 features [N, 2048], fc logits [N, 1008]) of images in [0, 1]. `resize=False` feeds
  the body the image as it is (at least 75x75): pytorch-fid always resizes to 299."""

  @nn.compact
  def __call__(self, images, resize: bool = True):
    x = preprocess(images, resize)
    x = BasicConv2d(32, 3, strides=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv2d(32, 3, name='Conv2d_2a_3x3')(x)
    x = _max_pool_down(BasicConv2d(64, 3, padding=1, name='Conv2d_2b_3x3')(x))
    x = BasicConv2d(80, 1, name='Conv2d_3b_1x1')(x)
    x = _max_pool_down(BasicConv2d(192, 3, name='Conv2d_4a_3x3')(x))
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)
    for name, c in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = InceptionC(c, name=name)(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE(max_pool=False, name='Mixed_7b')(x)
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)
    pool3 = jnp.mean(x, axis=(1, 2))
    return pool3, nn.Dense(NUM_CLASSES, precision=_HIGHEST, name='fc')(pool3)


_BN = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
       'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}


def convert_state_dict(state_dict) -> dict:
  """pytorch-fid's state dict (torch names -> arrays) -> flat flax names -> arrays, e.g.
  'Mixed_5b.branch1x1.conv.weight' (OIHW) -> 'params/Mixed_5b/branch1x1/conv/kernel' (HWIO)."""
  flat = {}
  for name, value in state_dict.items():
    value = np.asarray(value.detach().cpu().numpy() if hasattr(value, 'detach') else value)
    *path, leaf = name.split('.')
    if leaf == 'num_batches_tracked':
      continue  # a training counter; inference uses the running statistics only
    if path and path[-1] == 'conv' and leaf == 'weight':
      collection, leaf, value = 'params', 'kernel', value.transpose(2, 3, 1, 0)
    elif path and path[-1] == 'bn' and leaf in _BN:
      collection, leaf = _BN[leaf]
    elif path == ['fc'] and leaf in ('weight', 'bias'):
      collection = 'params'
      leaf, value = ('kernel', value.T) if leaf == 'weight' else ('bias', value)
    else:
      raise ValueError(f'{name!r} is not a weight of pytorch-fid\'s FID InceptionV3')
    flat['/'.join([collection, *path, leaf])] = np.ascontiguousarray(value, np.float32)
  return flat


@functools.cache
def _expected_shapes() -> dict:
  shapes = jax.eval_shape(lambda: InceptionV3().init(jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3)),
                                                     resize=False))
  return {k: v.shape for k, v in traverse_util.flatten_dict(shapes, sep='/').items()}


def _unflatten(flat: dict, source: str) -> dict:
  """The flax variables, after checking that `flat` holds exactly the model's arrays."""
  expected = _expected_shapes()
  missing, unexpected = sorted(expected.keys() - flat.keys()), sorted(flat.keys() - expected.keys())
  wrong = [f'{k} {flat[k].shape} (want {expected[k]})' for k in sorted(expected.keys() & flat.keys())
           if tuple(flat[k].shape) != tuple(expected[k])]
  if missing or unexpected or wrong:
    raise ValueError(f'{source} is not the FID InceptionV3: {len(missing)} missing {missing[:3]}, '
                     f'{len(unexpected)} unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}')
  return traverse_util.unflatten_dict({k: jnp.asarray(v, jnp.float32) for k, v in flat.items()}, sep='/')


def _torch_state_dict(path: str) -> dict:
  try:
    import torch  # pylint: disable=g-import-not-at-top  (optional: only to read .pth files)
  except ImportError as e:
    raise ImportError(f'reading {path} needs torch; or convert it once where torch is installed: '
                      f'python -m gan_jax.eval.inception --convert {path} OUT.npz') from e
  return torch.load(path, map_location='cpu', weights_only=True)


def load_params(path: str) -> dict:
  """{'params', 'batch_stats'} of the FID InceptionV3 from pytorch-fid's .pth (needs torch) or
  from an .npz written by `--convert` (needs only numpy)."""
  if str(path).endswith('.npz'):
    with np.load(path) as npz:
      return _unflatten({k: npz[k] for k in npz.files}, str(path))
  return _unflatten(convert_state_dict(_torch_state_dict(path)), str(path))


def save_npz(variables: dict, path: str):
  """Flat flax names ('params/Mixed_5b/branch1x1/conv/kernel') -> arrays, for `load_params`."""
  np.savez(path, **{k: np.asarray(v) for k, v in traverse_util.flatten_dict(variables, sep='/').items()})


@functools.partial(jax.jit, static_argnames=('fc_bias',))
def _forward(variables, images, fc_bias: bool):
  pool3, logits = InceptionV3().apply(variables, images)
  if not fc_bias:
    logits = jnp.dot(pool3, variables['params']['fc']['kernel'], precision=_HIGHEST)
  return pool3, logits


def features(params, images, batch_size: int = 50, fc_bias: bool = False):
  """(pool3 [N, 2048], logits [N, 1008]), float64 numpy, of NHWC images in [0, 1].

  `params` is what `load_params` returns. Logits are pool3 @ W without the fc bias by default:
  the original IS code and torch-fidelity ('logits_unbiased') score those; `fc_bias=True` gives
  the fc layer's output. The last batch is padded, so one program serves every batch."""
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f'want NHWC images with 1 or 3 channels, got shape {images.shape}')
  if not np.issubdtype(images.dtype, np.floating):
    raise TypeError(f'want floats in [0, 1], got {images.dtype} (divide uint8 pixels by 255)')
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)  # here, not in the jitted program: one program for both
  pools, logits = [], []
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size].astype(np.float32)
    n = len(batch)
    batch = np.concatenate([batch, np.zeros((batch_size - n,) + batch.shape[1:], np.float32)])
    p, l = _forward(params, batch, fc_bias)
    pools.append(np.asarray(p, np.float64)[:n])
    logits.append(np.asarray(l, np.float64)[:n])
  return np.concatenate(pools), np.concatenate(logits)


def inception_score(logits, splits: int = 10, shuffle_seed: int | None = 2020):
  """(mean, std) over `splits` parts of exp E_x KL(p(y|x) || p(y)), as torch-fidelity computes it.

  Softmax over all 1008 logits in float64, as the original IS code (its softmax has 1008
  outputs) and torch-fidelity do. torch-fidelity shuffles the samples first with
  np.random.RandomState(2020); `shuffle_seed=None` keeps their order, as the original code."""
  logits = np.asarray(logits, np.float64)
  if len(logits) < splits:
    raise ValueError(f'{len(logits)} samples cannot make {splits} splits')
  if shuffle_seed is not None:
    logits = logits[np.random.RandomState(shuffle_seed).permutation(len(logits))]
  import scipy.special  # pylint: disable=g-import-not-at-top  (~0.2 s, for this alone)
  log_p = scipy.special.log_softmax(logits, axis=1)
  n, scores = len(logits), []
  for i in range(splits):
    part = log_p[i * n // splits:(i + 1) * n // splits]
    log_marginal = np.log(np.exp(part).mean(axis=0, keepdims=True))
    scores.append(np.exp(np.mean(np.sum(np.exp(part) * (part - log_marginal), axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--convert', nargs=2, metavar=('IN.pth', 'OUT.npz'), required=True,
                      help='write pytorch-fid weights (read with torch) as an .npz for load_params')
  src, dst = parser.parse_args(argv).convert
  variables = _unflatten(convert_state_dict(_torch_state_dict(src)), src)
  save_npz(variables, dst)
  count = sum(v.size for v in jax.tree_util.tree_leaves(variables['params']))
  print(f'wrote {dst}: {count:,} parameters')


if __name__ == '__main__':
  main()
