"""The low-dimensional densities of the toy experiments (Figure 1, mode coverage)."""
import numpy as np

from gan_jax.errors import UserError

NAMES = ('ring2d', 'gaussian1d')


def sample(name: str, num_examples: int, seed: int) -> np.ndarray:
  """float32 [num_examples, dim] from the named density."""
  return sample_labelled(name, num_examples, seed)[0]


def sample_labelled(name: str, num_examples: int, seed: int):
  """(float32 [num_examples, dim], int32 labels or None): ring2d's label is the mode a point was
  drawn from (what a conditional model is asked for); the 1-D Gaussian has none."""
  rng = np.random.default_rng(seed)
  if name == 'ring2d':
    # 8 Gaussians (std 0.02) on a circle of radius 2, as in the unrolled-GAN mode-collapse test.
    modes = ring2d_modes()
    which = rng.integers(0, len(modes), num_examples)
    points = modes[which] + 0.02 * rng.standard_normal((num_examples, 2))
    return points.astype(np.float32), which.astype(np.int32)
  if name == 'gaussian1d':
    mean, std = gaussian1d_params()
    return (mean + std * rng.standard_normal((num_examples, 1))).astype(np.float32), None
  raise UserError(f'data.name={name!r} is not a synthetic source; choose one of {NAMES}.')


def ring2d_modes(num_modes: int = 8, radius: float = 2.0) -> np.ndarray:
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def gaussian1d_params():
  """(mean, std) of the 1-D data density of Figure 1."""
  return 1.0, 0.5


class ArraySource:
  """An in-memory split with the `Records` interface (the synthetic sources are small)."""

  def __init__(self, data: np.ndarray, labels=None):
    self.data, self.labels, self.shape = data, labels, data.shape[1:]

  def __len__(self):
    return len(self.data)

  def read(self, indices):
    return self.data[np.asarray(indices)]

  def read_all(self):
    return self.data

  def mean(self):
    return self.data.mean(axis=0)
