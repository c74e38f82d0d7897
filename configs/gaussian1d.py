"""Figure 1: a 1-D Gaussian p_data, uniform z, small MLPs; writes figure1.png at the end."""
import ml_collections

from configs import default


def get_config():
  c = default.get_config()
  c.data.name = 'gaussian1d'
  c.data.train_split = 'train'
  c.data.eval_split = 'test'
  c.data.scale = 'none'
  c.data.num_examples = 50_000
  c.data.num_eval_examples = 10_000
  c.model.generator = 'toy_mlp'
  c.model.discriminator = 'toy_mlp'
  c.model.noise = 'uniform'
  c.model.noise_dim = 1
  c.model.g_output = 'linear'
  c.model.g_output_bias = 'none'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(hidden=64, depth=2))
  c.model.d_kwargs = ml_collections.ConfigDict(dict(hidden=64, depth=2))
  c.train.batch_size = 256
  c.train.num_steps = 4000
  c.optim.g = default.adam(1e-3)
  c.optim.d = default.adam(1e-3)
  c.log_every_steps = 500
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 100
  c.keep_checkpoints_every_steps = 100
  c.num_samples = 5000
  c.figure1.enabled = True
  c.figure1.from_step = 100
  c.figure1.g_steps = 5
  return c
