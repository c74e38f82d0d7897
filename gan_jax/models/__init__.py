"""G(z; θg) and D(x; θd) as flax.linen modules, chosen by name from the config.

Discriminators return logits (one per example); the losses work on logits so they stay finite
when D saturates. `train=True` turns on D's dropout, which takes the 'dropout' rng.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models.dcgan import (DCGAN_MAX_SIZE, DCGAN_MIN_SIZE, DCGAN_SIZES, DCGAN_START_SIZES,  # noqa: F401
                                  ConvTranspose4x4Stride2, DCGANDiscriminator, DCGANGenerator,
                                  conv_4x4_stride_2, conv_hook_4x4_stride_2, conv_transpose_4x4_stride_2,
                                  dcgan_layout, dcgan_num_blocks, group_norm_groups)
from gan_jax.models.layers import (BatchNorm, Maxout, WeightNormDense, average_batch_stats,  # noqa: F401
                                   conv_lecun_normal, symmetric_uniform, with_label)
from gan_jax.models.mlp import (GaussianNoise, ImprovedGANDiscriminator, ImprovedGANGenerator, MLPEncoder,  # noqa: F401
                                PaperMaxoutDiscriminator, PaperMLPGenerator, ToyMLPDiscriminator,
                                ToyMLPGenerator)


NOISES = ('uniform', 'gaussian', 'uniform01', 'uniform_pm1')


def sample_noise(rng, shape, kind: str):
  """p_z. 'uniform' is U(-√3, √3) (unit variance, the released MNIST model), 'gaussian' N(0, I),
  'uniform01' U(0, 1) (Salimans et al.'s semi-supervised G), 'uniform_pm1' U(-1, 1) (BiGAN's)."""
  if kind == 'uniform':
    return jax.random.uniform(rng, shape, jnp.float32, -math.sqrt(3.0), math.sqrt(3.0))
  if kind == 'uniform01':
    return jax.random.uniform(rng, shape, jnp.float32)
  if kind == 'uniform_pm1':
    return jax.random.uniform(rng, shape, jnp.float32, -1.0, 1.0)
  if kind == 'gaussian':
    return jax.random.normal(rng, shape, jnp.float32)
  raise UserError(f'model.noise={kind!r} is unknown; choose one of {NOISES}.')


GENERATORS = {'paper_mlp': PaperMLPGenerator, 'dcgan': DCGANGenerator, 'toy_mlp': ToyMLPGenerator,
              'improved_gan': ImprovedGANGenerator}
DISCRIMINATORS = {'paper_maxout': PaperMaxoutDiscriminator, 'dcgan': DCGANDiscriminator,
                  'toy_mlp': ToyMLPDiscriminator, 'improved_gan': ImprovedGANDiscriminator}


ENCODERS = {'mlp': MLPEncoder}


def make_encoder(model_config):
  """E for the games that infer z from x (train.game='bigan'), from model.encoder/e_kwargs."""
  name = model_config.encoder
  if name not in ENCODERS:
    raise UserError(f'model.encoder={name!r} is unknown; choose one of {sorted(ENCODERS)}.')
  return ENCODERS[name](code_dim=model_config.noise_dim, **model_config.get('e_kwargs', {}))


def make_models(model_config, data_shape):
  """(G, D) modules from the config's registry names and keyword arguments; conditional on the
  class label when model.num_classes > 0 (§7 item 1 of the paper)."""
  g_name, d_name = model_config.generator, model_config.discriminator
  if g_name not in GENERATORS:
    raise UserError(f'model.generator={g_name!r} is unknown; choose one of {sorted(GENERATORS)}.')
  if d_name not in DISCRIMINATORS:
    raise UserError(f'model.discriminator={d_name!r} is unknown; choose one of {sorted(DISCRIMINATORS)}.')
  cond = {'num_classes': model_config.num_classes} if model_config.get('num_classes') else {}
  g = GENERATORS[g_name](out_shape=tuple(data_shape), output=model_config.g_output,
                         **model_config.get('g_kwargs', {}), **cond)
  d = DISCRIMINATORS[d_name](**model_config.get('d_kwargs', {}), **cond)
  return g, d


def with_batch_axis(module, axis_name):
  """The module with its batch statistics taken over the data-parallel axis `axis_name` (a
  module that normalises by the batch, `batch_axis`); any other module as it is."""
  if module is None or 'batch_axis' not in {f.name for f in dataclasses.fields(module)}:
    return module
  return module.clone(batch_axis=axis_name)


def needs_init_batch(module) -> bool:
  """Whether the module initialises from data (weight normalisation's data-dependent init)."""
  return bool(getattr(module, 'data_init', False))
