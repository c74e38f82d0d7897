"""configs/mnist_dcgan.py (the dcgan pair, Adam 2e-3) on Fashion-MNIST.

The rate chosen on MNIST serves here too: on Fashion-MNIST's validation split it brought the FD
at 4,000 steps from 174 (2e-4) to 75 (benchmarks/results/conv/, README's conv section).
"""
from configs import mnist_dcgan


def get_config():
  c = mnist_dcgan.get_config()
  c.data.name = 'fashion_mnist'
  return c
