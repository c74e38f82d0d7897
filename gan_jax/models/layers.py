"""Pieces the players share: the released code's initialisation, the conditioning inputs, output
activations and the maxout layer."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def symmetric_uniform(radius: float):
  """U(-radius, radius): pylearn2's `irange`, the released code's initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -radius, radius)
  return init


def conv_lecun_normal():
  """flax's lecun_normal (nn.Conv's default) for a kernel (..., in, out), drawn as the [fan_in,
  out] matrix it reshapes: the same fan-in, so the same values bit for bit, but XLA:CPU compiles
  jax's threefry draw per axis of its shape: one 4x4x16x8 kernel 3.0 s against 0.7 s, the conv
  pairs' initial states 2.1-2.5x faster (benchmarks/draw_compile.py, a 2 GHz AVX2 core)."""
  lecun = nn.initializers.lecun_normal()

  def init(key, shape, dtype=jnp.float32):
    return lecun(key, (math.prod(shape[:-1]), shape[-1]), dtype).reshape(shape)
  return init


def with_label(v, labels, num_classes: int, cond=None):
  """v with the one-hot class label (a conditional MLP's input, Mirza & Osindero 2014) and any
  other conditioning vector `cond` (a game's: a mask and the visible pixels, a code z) appended
  to its last axis; v unchanged for an unconditional model (num_classes 0, no cond)."""
  parts = [v]
  if num_classes:
    if labels is None:
      raise ValueError('a conditional model (num_classes > 0) needs the labels')
    parts.append(jax.nn.one_hot(labels, num_classes, dtype=v.dtype))
  if cond is not None:
    parts.append(cond.reshape(cond.shape[:v.ndim - 1] + (-1,)).astype(v.dtype))
  return jnp.concatenate(parts, axis=-1) if len(parts) > 1 else v


def output_activation(x, kind):
  if kind == 'sigmoid':
    return nn.sigmoid(x)
  if kind == 'tanh':
    return jnp.tanh(x)
  return x


class Maxout(nn.Module):
  """A dense maxout layer: `features` units, each the max over `pieces` linear pieces."""
  features: int
  pieces: int
  init_range: float

  @nn.compact
  def __call__(self, x):
    y = nn.Dense(self.features * self.pieces, kernel_init=symmetric_uniform(self.init_range))(x)
    return y.reshape(y.shape[:-1] + (self.features, self.pieces)).max(axis=-1)


class BatchNorm(nn.Module):
  """Batch normalisation by the statistics of the batch itself, over `axis_name` too (the
  global batch of a data-parallel step, or the examples of a per-example vmap, so N devices train
  what one does), then a learned shift and scale where asked. No running averages in training:
  Salimans et al.'s G normalises every batch it generates by that batch (improved-gan, nn.py
  BatchNormLayer), and BiGAN's networks train so too (jeffdonahue/bigan, net.py:483-530).

  Given a 'batch_stats' collection ({'mean', 'var'} per layer, `average_batch_stats`), it
  normalises by those instead: BiGAN's test mode, the averages of training batches' statistics.
  Each batch's own mean and unbiased variance are sown into 'bn_stats' for that average. flax's
  nn.BatchNorm keeps exponential running averages that every training apply would have to update.
  """
  use_scale: bool = False
  use_bias: bool = False
  epsilon: float = 1e-8  # inside the root
  axis_name: object = None

  @nn.compact
  def __call__(self, x):
    if self.has_variable('batch_stats', 'mean'):
      mean, var = self.get_variable('batch_stats', 'mean'), self.get_variable('batch_stats', 'var')
    else:
      mean_of = lambda v: v.mean(0) if self.axis_name is None else jax.lax.pmean(v.mean(0), self.axis_name)
      mean = mean_of(x)
      var = mean_of(jnp.square(x - mean))
      n = x.shape[0] * (1 if self.axis_name is None else jax.lax.psum(1, self.axis_name))
      if not self.is_initializing():  # (init keeps every collection it sees: not these)
        self.sow('bn_stats', 'mean', mean)
        self.sow('bn_stats', 'var', var * n / jnp.maximum(n - 1, 1))
    y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    if self.use_scale:
      y = y * self.param('scale', nn.initializers.ones, (x.shape[-1],))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (x.shape[-1],))
    return y


def average_batch_stats(apply_fn, batches) -> dict:
  """The 'batch_stats' collection of a module's BatchNorm layers: the plain average, over
  `batches`, of each batch's mean and unbiased variance as `apply_fn(batch)` (the module applied
  with mutable=['bn_stats'], returning (output, collections)) sows them; BiGAN's deploy()."""
  total, count = None, 0
  for batch in batches:
    stats = apply_fn(batch)[1]['bn_stats']
    total = stats if total is None else jax.tree.map(jnp.add, total, stats)
    count += 1
  if total is None:
    raise ValueError('average_batch_stats needs at least one batch')
  # sow keeps a tuple per name: ('mean': (value,)) becomes 'mean': value
  return jax.tree.map(lambda t: t[0] / count, total, is_leaf=lambda v: isinstance(v, tuple))


class WeightNormDense(nn.Module):
  """A dense layer with weight normalisation as improved-gan's nn.py builds it: each output
  unit's weights are g·v/‖v‖ (‖v‖ with `epsilon` inside the root), plus a bias.

  `data_init`: initialised in training mode on a batch (models/__init__.py's init_batch), g is
  1/std and b −mean/std of the unit's normalised pre-activations on that batch, so every unit
  starts at zero mean and unit variance there and the next layer sees it so (Salimans & Kingma
  2016, §3; their DenseLayer's init pass). `train_scale=False` holds g at its initial value (the
  optimiser sees a zero gradient for it), as their hidden layers do. flax's nn.WeightNorm has
  neither.
  """
  features: int
  kernel_init: object = nn.initializers.normal(0.1)
  train_scale: bool = True
  data_init: bool = False
  epsilon: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    v = self.param('kernel', self.kernel_init, (x.shape[-1], self.features))
    y = x @ (v / jnp.sqrt(jnp.sum(jnp.square(v), axis=0) + self.epsilon))
    scale_init, bias_init = nn.initializers.ones, nn.initializers.zeros
    if self.data_init and train and self.is_initializing():
      mean = y.mean(0)
      std = jnp.sqrt(jnp.mean(jnp.square(y - mean), 0))
      scale_init, bias_init = (lambda *_: 1 / std), (lambda *_: -mean / std)
    g = self.param('scale', scale_init, (self.features,))
    b = self.param('bias', bias_init, (self.features,))
    return y * (g if self.train_scale else jax.lax.stop_gradient(g)) + b
