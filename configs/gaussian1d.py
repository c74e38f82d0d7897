"""Figure 1: a 1-D Gaussian p_data, uniform z, small MLPs; writes figure1.png at the end."""
from configs import default


def get_config():
  c = default.toy_config('gaussian1d', noise='uniform', noise_dim=1, hidden=64, num_examples=50_000)
  c.train.num_steps = 4000
  c.log_every_steps = 500
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 100
  c.keep_checkpoints_every_steps = 100
  c.num_samples = 5000
  c.figure1.enabled = True
  c.figure1.from_step = 100
  c.figure1.g_steps = 5
  return c
