"""G(z; θg) and D(x; θd) as flax.linen modules, chosen by name from the config.

Discriminators return logits (one per example); the losses work on logits so they stay finite
when D saturates. `train=True` turns on D's dropout, which takes the 'dropout' rng.
"""
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError


def symmetric_uniform(radius: float):
  """U(-radius, radius): pylearn2's `irange`, the released code's initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -radius, radius)
  return init


def sample_noise(rng, shape, kind: str):
  """p_z. 'uniform' is U(-√3, √3) (unit variance, the released MNIST model), 'gaussian' N(0, I)."""
  if kind == 'uniform':
    return jax.random.uniform(rng, shape, jnp.float32, -math.sqrt(3.0), math.sqrt(3.0))
  if kind == 'gaussian':
    return jax.random.normal(rng, shape, jnp.float32)
  raise UserError(f'model.noise={kind!r} is unknown; choose uniform or gaussian.')


def _output(x, kind):
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


class PaperMLPGenerator(nn.Module):
  """The released MNIST G: z → 1200 ReLU → 1200 ReLU → sigmoid pixels, weights U(±0.05)."""
  out_shape: Sequence[int]
  output: str = 'sigmoid'
  hidden: int = 1200
  init_range: float = 0.05

  @nn.compact
  def __call__(self, z):
    init = symmetric_uniform(self.init_range)
    h = nn.relu(nn.Dense(self.hidden, kernel_init=init)(z))
    h = nn.relu(nn.Dense(self.hidden, kernel_init=init)(h))
    x = nn.Dense(int(np.prod(self.out_shape)), kernel_init=init, name='out')(h)
    return _output(x, self.output).reshape(z.shape[:-1] + tuple(self.out_shape))


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

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = x.reshape(x.shape[0], -1)
    h = nn.Dropout(self.input_drop, deterministic=not train)(h)
    h = Maxout(self.units, self.pieces, self.init_range)(h)
    h = nn.Dropout(self.hidden_drop, deterministic=not train)(h)
    h = Maxout(self.units, self.pieces, self.init_range)(h)
    h = nn.Dropout(self.hidden_drop, deterministic=not train)(h)
    return nn.Dense(1, kernel_init=symmetric_uniform(self.init_range))(h)[:, 0]


class DCGANGenerator(nn.Module):
  """A "deconvolutional" G for 32×32 images: dense → 4×4 → three stride-2 transposed convs.

  GroupNorm instead of BatchNorm keeps every example independent of the rest of the batch, so
  the data-parallel step equals the single-device one and no batch statistics need carrying.
  """
  out_shape: Sequence[int]
  output: str = 'tanh'
  width: int = 64

  @nn.compact
  def __call__(self, z):
    h, w, c = self.out_shape
    x = nn.Dense(4 * 4 * 4 * self.width)(z).reshape(z.shape[:-1] + (4, 4, 4 * self.width))
    x = nn.relu(nn.GroupNorm(num_groups=32)(x))
    for mult in (2, 1):
      x = nn.ConvTranspose(mult * self.width, (4, 4), strides=(2, 2))(x)
      x = nn.relu(nn.GroupNorm(num_groups=32)(x))
    x = nn.ConvTranspose(c, (4, 4), strides=(2, 2))(x)
    if x.shape[-3:] != (h, w, c):
      raise UserError(f'model.generator=dcgan makes {x.shape[-3:]} images, the data is {(h, w, c)}: '
                      'it is for 32×32 data (cifar10).')
    return _output(x, self.output)


class DCGANDiscriminator(nn.Module):
  """A conv D: three stride-2 convs with leaky ReLU, then a linear logit."""
  width: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train  # no dropout in this D
    for mult in (1, 2, 4):
      x = nn.leaky_relu(nn.Conv(mult * self.width, (4, 4), strides=(2, 2))(x), 0.2)
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


class ToyMLPGenerator(nn.Module):
  """A small MLP G for low-dimensional synthetic data."""
  out_shape: Sequence[int]
  output: str = 'linear'
  hidden: int = 128
  depth: int = 2

  @nn.compact
  def __call__(self, z):
    h = z
    for _ in range(self.depth):
      h = nn.relu(nn.Dense(self.hidden)(h))
    x = nn.Dense(int(np.prod(self.out_shape)))(h)
    return _output(x, self.output).reshape(z.shape[:-1] + tuple(self.out_shape))


class ToyMLPDiscriminator(nn.Module):
  """A small MLP D for low-dimensional synthetic data."""
  hidden: int = 128
  depth: int = 2

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    h = x.reshape(x.shape[0], -1)
    for _ in range(self.depth):
      h = nn.leaky_relu(nn.Dense(self.hidden)(h), 0.2)
    return nn.Dense(1)(h)[:, 0]


GENERATORS = {'paper_mlp': PaperMLPGenerator, 'dcgan': DCGANGenerator, 'toy_mlp': ToyMLPGenerator}
DISCRIMINATORS = {'paper_maxout': PaperMaxoutDiscriminator, 'dcgan': DCGANDiscriminator,
                  'toy_mlp': ToyMLPDiscriminator}


def make_models(model_config, data_shape):
  """(G, D) modules from the config's registry names and keyword arguments."""
  g_name, d_name = model_config.generator, model_config.discriminator
  if g_name not in GENERATORS:
    raise UserError(f'model.generator={g_name!r} is unknown; choose one of {sorted(GENERATORS)}.')
  if d_name not in DISCRIMINATORS:
    raise UserError(f'model.discriminator={d_name!r} is unknown; choose one of {sorted(DISCRIMINATORS)}.')
  g = GENERATORS[g_name](out_shape=tuple(data_shape), output=model_config.g_output,
                         **model_config.get('g_kwargs', {}))
  d = DISCRIMINATORS[d_name](**model_config.get('d_kwargs', {}))
  return g, d
