"""MNIST with the dcgan pair (not in the paper): a "deconvolutional" G (7×7 map → 14 → 28, GroupNorm,
tanh) against a conv D (28 → 14 → 7, leaky ReLU), pixels in [-1, 1], Gaussian noise, Adam 2e-4 with
β1 0.5 and batch 64 (DCGAN's recipe).

Width 32 keeps one training step fast on 2 CPU cores (see the README's configs table).
"""
from configs import default


def get_config():
  c = default.dcgan_config(width=32)
  c.data.name = 'mnist'
  c.train.num_steps = 50_000
  c.train.steps_per_call = 10
  c.eval_every_steps = 2000
  c.checkpoint_every_steps = 2000
  return c
