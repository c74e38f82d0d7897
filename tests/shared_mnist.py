"""MNIST prepared from the official archives and its train and test splits decoded, once per test
run, in a directory all of the run's processes share (conftest.tfds_dir). The tests' slices of
those splits read their records (16 slices decoded alone were 170,000 images, not 70,000).

conftest starts this module in the background as soon as a collected test needs it, so that its
~40 s of work runs beside other tests instead of a test worker idling until it is done; the
fixture then finds it done, or waits on the same lock.
`python -m tests.shared_mnist DIR ARCHIVES [CORES]`.
"""
import fcntl
import os
import sys


def prepare_and_decode(path: str, mnist_dir: str) -> None:
  from configs import mnist
  from gan_jax import data
  c = mnist.get_config().data
  c.manual_dir, c.data_dir = mnist_dir, path
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, '.decoded.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    for split in ('train', 'test'):
      data.open_split(c, split).close()


if __name__ == '__main__':
  if len(sys.argv) > 3 and sys.argv[3]:  # every core the test run may use, not its worker's one
    os.sched_setaffinity(0, [int(c) for c in sys.argv[3].split(',')])
  prepare_and_decode(*sys.argv[1:3])
