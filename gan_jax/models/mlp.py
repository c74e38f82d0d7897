"""The MLP players: the released MNIST pair (ReLU G, maxout D), small MLPs for the synthetic
densities, and the encoder of the inference game."""
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np

from gan_jax.errors import UserError
from gan_jax.models.layers import (BatchNorm, Maxout, WeightNormDense, output_activation, symmetric_uniform,
                                   with_label)


def dense_init(init: str, scale: float):
  """'uniform': U(±scale), pylearn2's irange (the released code); 'normal': N(0, scale²) (BiGAN's,
  0.02); 'zeros'."""
  if init == 'uniform':
    return symmetric_uniform(scale)
  if init == 'normal':
    return nn.initializers.normal(scale)
  if init == 'zeros':
    return nn.initializers.zeros
  raise UserError(f'init={init!r} is unknown; choose uniform, normal or zeros.')


class PaperMLPGenerator(nn.Module):
  """The released MNIST G: z → 1200 ReLU → 1200 ReLU → sigmoid pixels, weights U(±0.05).

  BiGAN's G (Donahue et al. 2017, jeffdonahue/bigan net.py:839-858) is this MLP with options:
  1024 units, `batch_norm` (each hidden layer's pre-activation normalised by its batch, no
  scale or shift), z added again to the second layer's pre-activation through its own matrix
  (`z_again=True`), N(0, 0.02²) weights (`weight_init='normal', init_range=0.02`), no biases.
  """
  out_shape: Sequence[int]
  output: str = 'sigmoid'
  hidden: int = 1200
  init_range: float = 0.05
  weight_init: str = 'uniform'
  use_bias: bool = True
  batch_norm: bool = False
  z_again: bool = False
  num_classes: int = 0  # > 0: G(z, y), the one-hot label beside z
  batch_axis: object = None

  @nn.compact
  def __call__(self, z, labels=None, cond=None):
    dense = lambda n, **kw: nn.Dense(n, use_bias=self.use_bias, kernel_init=dense_init(self.weight_init, self.init_range), **kw)
    norm = lambda h: BatchNorm(axis_name=self.batch_axis)(h) if self.batch_norm else h
    h = nn.relu(norm(dense(self.hidden)(with_label(z, labels, self.num_classes, cond))))
    h = dense(self.hidden)(h)
    if self.z_again:
      h = h + dense(self.hidden, name='z_again')(z)
    h = nn.relu(norm(h))
    x = dense(int(np.prod(self.out_shape)), name='out')(h)
    return output_activation(x, self.output).reshape(z.shape[:-1] + tuple(self.out_shape))


class PaperMaxoutDiscriminator(nn.Module):
  """The released MNIST D: maxout 240×5 → maxout 240×5 → 1, weights U(±0.005).

  Dropout keeps 0.8 of the input and 0.5 of each hidden layer's input (inverted scaling, as the
  released code's input_scales 1.25 and 2).
  """
  units: int = 240
  pieces: int = 5
  init_range: float = 0.005
  input_drop: float = 0.2
  hidden_drop: float = 0.5
  num_classes: int = 0  # > 0: D(x, y), the one-hot label beside the (dropped-out) pixels
  num_outputs: int = 1  # > 1: that many logits per example (a K-class D, games/semi_supervised.py)

  @nn.compact
  def __call__(self, x, labels=None, cond=None, train: bool = False):
    h = x.reshape(x.shape[0], -1)
    h = nn.Dropout(self.input_drop, deterministic=not train)(h)
    h = with_label(h, labels, self.num_classes, cond)  # the condition itself is never dropped
    h = Maxout(self.units, self.pieces, self.init_range)(h)
    h = nn.Dropout(self.hidden_drop, deterministic=not train)(h)
    h = Maxout(self.units, self.pieces, self.init_range)(h)
    self.sow('intermediates', 'features', h)  # what feature matching matches
    h = nn.Dropout(self.hidden_drop, deterministic=not train)(h)
    logits = nn.Dense(self.num_outputs, kernel_init=symmetric_uniform(self.init_range))(h)
    return logits[:, 0] if self.num_outputs == 1 else logits


class GaussianNoise(nn.Module):
  """x + N(0, stddev²) per unit in training (the 'dropout' rng); the identity otherwise."""
  stddev: float

  @nn.compact
  def __call__(self, x, train: bool):
    if not train or not self.stddev:
      return x
    return x + self.stddev * jax.random.normal(self.make_rng('dropout'), x.shape, x.dtype)


class ImprovedGANDiscriminator(nn.Module):
  """Salimans et al.'s (2016) permutation-invariant MNIST D for semi-supervised learning
  (improved-gan, train_mnist_feature_matching.py and nn.py's DenseLayer): ReLU layers of 1000,
  500, 250, 250, 250 units with weight normalisation (v ~ N(0, kernel_std²)), Gaussian noise of
  stddev 0.3 on the input and 0.5 after every hidden layer, `num_outputs` logits. Theirs
  initialises the scales and biases from data (`data_init`, on a batch with the noise on) and
  trains only the output layer's scales (`train_hidden_scales=False`). Feature matching matches
  the last hidden layer before its noise, as theirs does.
  """
  hidden: Sequence[int] = (1000, 500, 250, 250, 250)
  input_noise: float = 0.3
  hidden_noise: float = 0.5
  num_outputs: int = 1
  kernel_std: float = 0.1
  data_init: bool = True
  train_hidden_scales: bool = False

  @nn.compact
  def __call__(self, x, labels=None, cond=None, train: bool = False):
    if labels is not None or cond is not None:
      raise NotImplementedError('the improved_gan D is unconditional')
    dense = lambda units, train_scale: WeightNormDense(units, nn.initializers.normal(self.kernel_std),
                                                       train_scale, self.data_init)
    h = GaussianNoise(self.input_noise)(x.reshape(x.shape[0], -1), train)
    for units in self.hidden:
      h = nn.relu(dense(units, self.train_hidden_scales)(h, train))
      last = h
      h = GaussianNoise(self.hidden_noise)(h, train)
    self.sow('intermediates', 'features', last)
    logits = dense(self.num_outputs, True)(h, train)
    return logits[:, 0] if self.num_outputs == 1 else logits


class ImprovedGANGenerator(nn.Module):
  """Salimans et al.'s MNIST G for feature matching: z → 500 → 500 softplus units, each dense
  layer (Glorot-uniform, no bias) batch-normalised over the batch with a learned shift and no
  scale, then a weight-normalised dense layer (trainable scales) to sigmoid pixels (improved-gan,
  train_mnist_feature_matching.py). The batch statistics are the global batch's: `batch_axis`
  names the data-parallel axis (step.py sets it)."""
  out_shape: Sequence[int]
  output: str = 'sigmoid'
  hidden: Sequence[int] = (500, 500)
  batch_axis: object = None

  @nn.compact
  def __call__(self, z):
    h = z
    for units in self.hidden:
      h = nn.Dense(units, use_bias=False, kernel_init=nn.initializers.glorot_uniform())(h)
      h = nn.softplus(BatchNorm(use_bias=True, epsilon=1e-6, axis_name=self.batch_axis)(h))
    x = WeightNormDense(int(np.prod(self.out_shape)), nn.initializers.glorot_uniform(), epsilon=1e-6, name='out')(h)
    return output_activation(x, self.output).reshape(z.shape[:-1] + tuple(self.out_shape))


class ToyMLPGenerator(nn.Module):
  """A small MLP G for low-dimensional synthetic data."""
  out_shape: Sequence[int]
  output: str = 'linear'
  hidden: int = 128
  depth: int = 2
  num_classes: int = 0

  @nn.compact
  def __call__(self, z, labels=None, cond=None):
    h = with_label(z, labels, self.num_classes, cond)
    for _ in range(self.depth):
      h = nn.relu(nn.Dense(self.hidden)(h))
    x = nn.Dense(int(np.prod(self.out_shape)))(h)
    return output_activation(x, self.output).reshape(z.shape[:-1] + tuple(self.out_shape))


class ToyMLPDiscriminator(nn.Module):
  """An MLP D of leaky-ReLU (0.2) layers: small, for low-dimensional synthetic data; with options,
  BiGAN's D(x, z) (jeffdonahue/bigan gan.py:33-76, net.py:787-803): 1024 units, the condition z
  added to the second layer's pre-activation through its own matrix (`cond_at=1`; 0: beside the
  input), `batch_norm` on every layer but the first (no scale or shift), N(0, 0.02²) weights,
  a zero-initialised output, no biases."""
  hidden: int = 128
  depth: int = 2
  num_classes: int = 0
  cond_at: int = 0
  batch_norm: bool = False
  weight_init: str = 'lecun'  # flax's default; or as dense_init
  init_range: float = 0.02
  zero_output: bool = False
  use_bias: bool = True
  batch_axis: object = None

  @nn.compact
  def __call__(self, x, labels=None, cond=None, train: bool = False):
    del train
    kernel = nn.initializers.lecun_normal() if self.weight_init == 'lecun' else dense_init(self.weight_init, self.init_range)
    dense = lambda n, **kw: nn.Dense(n, use_bias=self.use_bias, kernel_init=kernel, **kw)
    late = cond if self.cond_at else None
    h = with_label(x.reshape(x.shape[0], -1), labels, self.num_classes, None if self.cond_at else cond)
    for i in range(self.depth):
      h = dense(self.hidden)(h)
      if late is not None and i == self.cond_at:
        h = h + dense(self.hidden, name='cond')(late.reshape(late.shape[0], -1))
      if self.batch_norm and i > 0:
        h = BatchNorm(axis_name=self.batch_axis)(h)
      h = nn.leaky_relu(h, 0.2)
    out = nn.Dense(1, use_bias=self.use_bias, kernel_init=nn.initializers.zeros if self.zero_output else kernel)
    return out(h)[:, 0]


class MLPEncoder(nn.Module):
  """E(x): pixels → a code of G's noise size (the inference network of §7 item 2), leaky-ReLU
  (0.2) layers. With options, BiGAN's E (jeffdonahue/bigan net.py:1107-1134, gan.py:234-243,
  dist.py:101-125): `batch_norm` on every layer but the first (no scale or shift), N(0, 0.02²)
  weights, no biases, and the code bounded as 2·sigmoid(a) − 1 (`code='bounded'`), the range of
  its z ~ U(−1, 1). Sows the last hidden layer ('features') and the code's pre-activation a
  ('logits'): BiGAN's 1-NN scores read both."""
  code_dim: int
  hidden: int = 1024
  depth: int = 2
  batch_norm: bool = False
  weight_init: str = 'lecun'
  init_range: float = 0.02
  use_bias: bool = True
  code: str = 'linear'
  batch_axis: object = None

  @nn.compact
  def __call__(self, x):
    kernel = nn.initializers.lecun_normal() if self.weight_init == 'lecun' else dense_init(self.weight_init, self.init_range)
    dense = lambda n: nn.Dense(n, use_bias=self.use_bias, kernel_init=kernel)
    h = x.reshape(x.shape[0], -1)
    for i in range(self.depth):
      h = dense(self.hidden)(h)
      if self.batch_norm and i > 0:
        h = BatchNorm(axis_name=self.batch_axis)(h)
      h = nn.leaky_relu(h, 0.2)
    self.sow('intermediates', 'features', h)
    a = dense(self.code_dim)(h)
    self.sow('intermediates', 'logits', a)
    if self.code == 'bounded':
      return 2 * nn.sigmoid(a) - 1
    if self.code != 'linear':
      raise UserError(f'model.e_kwargs.code={self.code!r} is unknown; choose linear or bounded.')
    return a
