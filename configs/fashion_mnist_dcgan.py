"""configs/mnist_dcgan.py (the dcgan pair, DCGAN's recipe) on Fashion-MNIST."""
from configs import mnist_dcgan


def get_config():
  c = mnist_dcgan.get_config()
  c.data.name = 'fashion_mnist'
  return c
