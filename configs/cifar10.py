"""CIFAR-10 with a "deconvolutional" G and a conv D (DCGAN-style), pixels in [-1, 1], Adam."""
import ml_collections

from configs import default


def get_config():
  c = default.get_config()
  c.data.name = 'cifar10'
  c.data.train_split = 'train[:45000]'
  c.data.valid_split = 'train[45000:46000]'
  c.data.scale = 'symmetric'
  c.model.generator = 'dcgan'
  c.model.discriminator = 'dcgan'
  c.model.noise = 'gaussian'
  c.model.g_output = 'tanh'
  c.model.g_output_bias = 'none'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(width=64))
  c.model.d_kwargs = ml_collections.ConfigDict(dict(width=64))
  c.train.batch_size = 64
  c.train.num_steps = 50_000
  c.optim.g = default.adam(2e-4)
  c.optim.d = default.adam(2e-4)
  c.eval_every_steps = 1000
  c.num_samples = 64
  return c
