"""Algorithm 1 of the paper on MNIST: k D-updates (each on its own minibatch and noise), then one
G-update against the updated D. Everything else is the released recipe (configs/mnist.py), which
updated both players at once instead. k is `--config.train.k` (the paper used k = 1).
"""
from configs import mnist


def get_config():
  c = mnist.get_config()
  c.train.update_mode = 'alternating'
  c.train.k = 1
  return c
