"""Pieces the players share: the released code's initialisation, the conditioning inputs, output
activations and the maxout layer."""
import flax.linen as nn
import jax
import jax.numpy as jnp


def symmetric_uniform(radius: float):
  """U(-radius, radius): pylearn2's `irange`, the released code's initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -radius, radius)
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
