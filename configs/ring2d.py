"""A 2-D mixture of 8 Gaussians on a ring: mode coverage in a minute on a CPU."""
import ml_collections

from configs import default


def get_config():
  c = default.get_config()
  c.data.name = 'ring2d'
  c.data.train_split = 'train'
  c.data.eval_split = 'test'
  c.data.scale = 'none'
  c.data.num_examples = 100_000
  c.data.num_eval_examples = 10_000
  c.model.generator = 'toy_mlp'
  c.model.discriminator = 'toy_mlp'
  c.model.noise = 'gaussian'
  c.model.noise_dim = 16
  c.model.g_output = 'linear'
  c.model.g_output_bias = 'none'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(hidden=128, depth=2))
  c.model.d_kwargs = ml_collections.ConfigDict(dict(hidden=128, depth=2))
  c.train.batch_size = 256
  c.train.num_steps = 3000
  c.optim.g = default.adam(1e-3)
  c.optim.d = default.adam(1e-3)
  c.log_every_steps = 250
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.num_samples = 2000
  return c
