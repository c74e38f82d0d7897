"""The paper's MNIST model and recipe on Fashion-MNIST."""
from configs import mnist


def get_config():
  c = mnist.get_config()
  c.data.name = 'fashion_mnist'
  return c
