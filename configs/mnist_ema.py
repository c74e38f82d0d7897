"""configs/mnist.py (the released recipe, unchanged) plus an exponential moving average of G's
weights, sampled at evaluation. Not in the paper: the training dynamics are identical, only the
model that is evaluated differs (the run logs the raw G's numbers beside, as raw_g/*)."""
from configs import mnist


def get_config():
  c = mnist.get_config()
  c.train.ema_decay = 0.9999
  return c
