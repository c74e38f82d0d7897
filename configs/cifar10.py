"""CIFAR-10 with a "deconvolutional" G and a conv D (DCGAN-style), pixels in [-1, 1], Adam."""
from configs import default


def get_config():
  c = default.dcgan_config(width=64)
  c.data.name = 'cifar10'
  c.data.train_split = 'train[:45000]'
  c.data.valid_split = 'train[45000:50000]'  # held out: chooses (σ on its first 1000)
  c.train.num_steps = 50_000
  c.eval_every_steps = 1000
  c.num_samples = 64
  return c
