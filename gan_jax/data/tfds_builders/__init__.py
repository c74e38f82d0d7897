"""TF-free tfds builders for the datasets the paper uses.

Each builder subclasses tfds' official one (same name, version, features and registered
checksums) and replaces only the file reading, which upstream does through `tf.io.gfile`.
The prepared array_record files are therefore the ones the official builder would write,
and data a user prepared with the official builders is read as is.
"""
from gan_jax.data.tfds_builders.builders import BUILDERS, MNIST, Cifar10, FashionMNIST

__all__ = ['BUILDERS', 'MNIST', 'Cifar10', 'FashionMNIST']
