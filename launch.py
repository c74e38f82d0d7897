"""Train (and later evaluate) a GAN from a config file.

  python launch.py --config=configs/mnist.py --workdir=/tmp/mnist \
      --config.data.manual_dir=/path/to/mnist/archives

Any config value can be overridden: --config.train.k=2. A workdir with a checkpoint resumes.
"""
import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and samples.')
flags.DEFINE_enum('mode', 'train', ['train'], 'What to do.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = FLAGS.config
  import jax  # after flag parsing: device setup below must precede JAX's backend start
  if config.mesh.platform == 'cpu' and config.mesh.num_devices:
    jax.config.update('jax_num_cpu_devices', config.mesh.num_devices)
  from gan_jax import train
  from gan_jax.errors import UserError
  logging.set_verbosity(logging.INFO)
  # Our INFO lines (progress, resume, data) stay; libraries' INFO chatter (orbax logs every
  # file it renames) goes, their warnings and errors stay.
  for handler in std_logging.getLogger().handlers:
    handler.addFilter(lambda r: r.levelno >= std_logging.WARNING or '/gan_jax/' in r.pathname)
  try:
    if FLAGS.mode == 'train':
      train.train_and_evaluate(config, FLAGS.workdir)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
