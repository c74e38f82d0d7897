"""The conv pair (models/dcgan.py) at any image size: stage layouts, shapes and parameter counts
against a hand count, group norm, and convolutions written as matmuls equal to flax's."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import mnist_dcgan
from gan_jax import models
from gan_jax.errors import UserError
from tests.conftest import flat_draw, jit_apply

# The dcgan pair's layout, written out: image side -> (start map side, stride-2 stages).
DCGAN_LAYOUTS = {28: (7, 2), 32: (4, 3), 56: (7, 3), 64: (4, 4), 112: (7, 4), 128: (4, 5)}


def conv_params(k, cin, cout):
  return k * k * cin * cout + cout


def dcgan_g_param_count(size, channels, width, noise_dim):
  """Dense to the first map, GroupNorm (scale, bias) after it and after each hidden stage,
  4×4 transposed convs halving the width down to `width`, then one to the image's channels."""
  s0, n = DCGAN_LAYOUTS[size]
  widths = [width * 2 ** (n - 1 - i) for i in range(n)]  # first map ... last hidden map
  count = noise_dim * s0 * s0 * widths[0] + s0 * s0 * widths[0]
  count += sum(2 * w for w in widths)
  count += sum(conv_params(4, cin, cout) for cin, cout in zip(widths, widths[1:]))
  return count + conv_params(4, width, channels)


def dcgan_d_param_count(size, channels, width):
  """4×4 stride-2 convs widening width, 2·width, ... down to the start map, then a Dense logit."""
  s0, n = DCGAN_LAYOUTS[size]
  widths = [channels] + [width * 2 ** i for i in range(n)]
  count = sum(conv_params(4, cin, cout) for cin, cout in zip(widths, widths[1:]))
  return count + s0 * s0 * widths[-1] + 1


def num_params(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def test_dcgan_sizes_and_stage_counts():
  assert models.DCGAN_SIZES == tuple(sorted(DCGAN_LAYOUTS))
  assert {s: models.dcgan_layout(s) for s in DCGAN_LAYOUTS} == DCGAN_LAYOUTS
  assert [models.dcgan_num_blocks(s) for s in (28, 32, 64, 128)] == [2, 3, 4, 5]


@pytest.mark.parametrize('size,channels,width', [(28, 1, 16), (32, 3, 16), (56, 3, 8), (64, 1, 8),
                                                 (112, 1, 8), (128, 3, 8)])
def test_dcgan_shapes_and_parameter_counts(size, channels, width):
  """Shapes only (jax.eval_shape runs nothing); test_models.py's test_shapes_and_ranges runs the
  configs' models."""
  shape, noise_dim = (size, size, channels), 20
  g, d = models.DCGANGenerator(shape, width=width), models.DCGANDiscriminator(width=width)
  z = jax.ShapeDtypeStruct((3, noise_dim), jnp.float32)
  g_params = jax.eval_shape(g.init, jax.random.PRNGKey(1), z)
  x = jax.eval_shape(g.apply, g_params, z)
  assert x.shape == (3,) + shape
  d_params = jax.eval_shape(d.init, jax.random.PRNGKey(2), x)
  assert jax.eval_shape(d.apply, d_params, x).shape == (3,)
  assert num_params(g_params) == dcgan_g_param_count(size, channels, width, noise_dim)
  assert num_params(d_params) == dcgan_d_param_count(size, channels, width)


def test_dcgan_param_counts_at_the_mnist_config_width():
  c = mnist_dcgan.get_config()
  g, d = models.make_models(c.model, (28, 28, 1))
  z = jnp.zeros((1, c.model.noise_dim))
  width = c.model.g_kwargs.width
  g_params = jax.eval_shape(g.init, jax.random.PRNGKey(0), z)
  assert num_params(g_params) == dcgan_g_param_count(28, 1, width, c.model.noise_dim)
  width = c.model.d_kwargs.width
  d_params = jax.eval_shape(d.init, jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
  assert num_params(d_params) == dcgan_d_param_count(28, 1, width)


@pytest.mark.parametrize('shape', [(48, 48, 3), (100, 100, 1), (24, 24, 1), (16, 16, 3),
                                   (256, 256, 3), (32, 28, 3)])
def test_dcgan_unsupported_size_is_a_clear_error(shape):
  z = jnp.zeros((1, 8))
  message = r'square images of side 28, 32, 56, 64, 112, 128 .*--config\.data\.image_size'
  with pytest.raises(UserError, match=message):
    jax.eval_shape(models.DCGANGenerator(shape, width=8).init, jax.random.PRNGKey(0), z)
  with pytest.raises(UserError, match=message):
    jax.eval_shape(models.DCGANDiscriminator(width=8).init, jax.random.PRNGKey(0), jnp.zeros((1,) + shape))
  if shape[0] == shape[1]:  # the pure check that config validation can call
    with pytest.raises(UserError, match=message):
      models.dcgan_num_blocks(shape[0])


def test_group_norm_groups_divide_the_channels():
  assert [models.group_norm_groups(c) for c in (1, 8, 12, 48, 64, 96, 256)] == [1, 8, 12, 24, 32, 32, 32]


@pytest.mark.parametrize('norm_groups', [32, 1, 0])
def test_dcgan_generator_norm_groups(norm_groups):
  """What G's hidden maps are normalized over, read from GroupNorm's outputs: each group of
  channels (all of them when norm_groups=1) centred per example; a single channel only when the
  group is one channel (32 groups of a 32-channel map); no GroupNorm at all with 0."""
  g = models.GENERATORS['dcgan'](out_shape=(28, 28, 1), width=32, norm_groups=norm_groups)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 100))
  params = jax.jit(g.init)(jax.random.PRNGKey(1), z)
  norms = sorted(k for k in params['params'] if k.startswith('GroupNorm'))
  assert len(norms) == (0 if norm_groups == 0 else 2)
  _, seen = jit_apply(g)(params, z, capture_intermediates=_is_group_norm, mutable=('intermediates',))
  channels = []
  for name in norms:
    x = np.asarray(seen['intermediates'][name]['__call__'][0])  # scale 1, bias 0 at init
    b, h, w, c = x.shape
    groups = min(norm_groups, c)
    group_means = x.reshape(b, h, w, groups, c // groups).mean(axis=(1, 2, 4))
    assert np.abs(group_means).max() < 1e-4, (name, np.abs(group_means).max())
    per_channel = np.abs(x.mean(axis=(1, 2))).max()
    assert (per_channel < 1e-4) == (groups == c), (name, groups, c, per_channel)
    channels.append(c)
  assert channels == ([] if norm_groups == 0 else [64, 32])


def _is_group_norm(module, _):
  return isinstance(module, nn.GroupNorm)


@functools.partial(jax.jit, static_argnums=0)
def _conv_output_and_grads(module_pair, params, x):
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))  # weighs each output differently
  # R1's penalty differentiates the input gradient again, with respect to the parameters
  r1 = lambda m: lambda p, x: jnp.sum(jax.grad(loss(m), argnums=1)(p, x) ** 2)
  return [(m.apply(params, x), jax.grad(loss(m), argnums=(0, 1))(params, x), jax.grad(r1(m))(params, x))
          for m in module_pair]


def test_dcgan_convolutions_equal_flax_convolutions():
  """The matmul convolutions start from nn.Conv's and nn.ConvTranspose's initial parameters and
  compute their results, gradients and second derivatives (R1's) from the same parameters."""
  key = iter(jax.random.split(jax.random.PRNGKey(0), 6))
  params = lambda cin, cout: {'params': {'kernel': flat_draw(jax.random.normal, next(key), (4, 4, cin, cout)),
                                         'bias': jax.random.normal(next(key), (cout,))}}
  up = (models.ConvTranspose4x4Stride2(6), nn.ConvTranspose(6, (4, 4), strides=(2, 2)))
  down = (nn.Conv(6, (4, 4), strides=(2, 2), kernel_init=models.conv_lecun_normal(),
                  conv_general_dilated=models.conv_hook_4x4_stride_2),
          nn.Conv(6, (4, 4), strides=(2, 2)))
  for pair, x in ((up, flat_draw(jax.random.normal, next(key), (2, 7, 7, 5))),
                  (down, flat_draw(jax.random.normal, next(key), (2, 14, 14, 5)))):
    p = params(5, 6)
    # the same initial parameters bit for bit (ours draw each kernel as its [fan_in, out] matrix:
    # XLA:CPU compiles a draw over a kernel's four axes ~4x slower)
    jax.tree.map(np.testing.assert_array_equal, jax.jit(pair[0].init)(jax.random.PRNGKey(0), x),
                 jax.jit(pair[1].init)(jax.random.PRNGKey(0), x))
    ours, theirs = jax.tree.map(np.asarray, _conv_output_and_grads(pair, p, x))
    # float32 sums of ~1,000-sized terms: absolute tolerance in proportion to each array's scale
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 + 1e-5 * np.abs(b).max()),
                 ours, theirs)


def test_dcgan_has_no_xla_convolutions():
  """XLA's CPU convolution gradients inside lax.scan (the training step) ran 10-60× slower than
  the same work as matmuls (jax#12868): the dcgan pair must stay convolution-free."""
  g, d = models.DCGANGenerator((28, 28, 1), width=8), models.DCGANDiscriminator(width=8)
  z = jnp.zeros((2, 8))
  g_params = jax.eval_shape(g.init, jax.random.PRNGKey(0), z)
  d_params = jax.eval_shape(d.init, jax.random.PRNGKey(1), jnp.zeros((2, 28, 28, 1)))
  loss = lambda gp, dp: jnp.sum(d.apply(dp, g.apply(gp, z)))
  jaxpr = str(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(g_params, d_params))
  assert 'conv_general_dilated' not in jaxpr and 'dot_general' in jaxpr
