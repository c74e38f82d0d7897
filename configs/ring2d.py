"""A 2-D mixture of 8 Gaussians on a ring: mode coverage in a minute on a CPU."""
from configs import default


def get_config():
  c = default.toy_config('ring2d', noise='gaussian', noise_dim=16, hidden=128, num_examples=100_000)
  c.train.num_steps = 3000
  c.log_every_steps = 250
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.num_samples = 2000
  return c
