"""Train, evaluate or draw a GAN from a config file.

  python launch.py --config=configs/cifar10.py
  python launch.py --config=configs/mnist.py --config.data.manual_dir=/path/to/mnist/archives

--workdir defaults to workdirs/<config file name>. Any config value can be overridden:
--config.train.k=2. A workdir with a checkpoint resumes.
"""
import os
import re
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and samples '
                    '(default: workdirs/<config file name without .py>).')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample'],
                  'train: train (resuming from workdir). eval: the full metrics of a checkpoint '
                  '(eval.json, TensorBoard, a table). sample: pictures from a checkpoint.')
flags.DEFINE_integer('step', None, 'Checkpoint step for --mode=eval/sample (default: the newest).')
flags.DEFINE_bool('distributed', False, 'Start jax.distributed from the cluster environment '
                  '(TPU pod slices, SLURM, Open MPI): JAX finds the coordinator itself.')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 for a multi-process run '
                    'started by hand; with --num_processes and --process_id.')
flags.DEFINE_integer('num_processes', None, 'Number of processes (with --coordinator_address).')
flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1 (with --coordinator_address).')
flags.mark_flags_as_required(['config'])


def default_workdir(config_path: str) -> str:
  return os.path.join('workdirs', os.path.splitext(os.path.basename(config_path.split(':')[0]))[0])


def parse_flags(argv):
  """absl's parsing, with a mistyped --config.<key> (which ml_collections raises as a bare
  AttributeError) reported in one line."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as e:
    text = str(e.args[0] if e.args else e)
    name = (re.search(r'\w+', text) or re.search('', '')).group(0)
    given = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.')]
    flag = next((g for g in given if g.endswith('.' + name)), given[0] if given else '--config')
    hint = re.search(r'Did you mean "([^"]+)"', text)
    print(f'error: {flag}: the config has no key {name!r}'
          + (f' (did you mean {hint.group(1)!r}?)' if hint else '; see the config file for its keys') + '.',
          file=sys.stderr)
    sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = FLAGS.config
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS['config']))
  from gan_jax import files
  from gan_jax.errors import NonFiniteError, UserError
  try:
    files.check_reachable(workdir)  # before JAX starts: an unreachable bucket fails in seconds
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  if config.mesh.keep_host_memory:
    from gan_jax import host_memory
    host_memory.keep_freed_memory()  # before JAX's backend starts the threads that allocate
  import jax  # after flag parsing: device setup below must precede JAX's backend start
  if config.mesh.platform == 'cpu' and config.mesh.num_devices:
    jax.config.update('jax_num_cpu_devices', config.mesh.num_devices)
  if FLAGS.coordinator_address or FLAGS.distributed:
    # CPU collectives between processes go through gloo, jax's default for CPU.
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  from gan_jax import progress
  progress.quiet_library_logs()  # before tfds is imported: it warns at import
  from gan_jax import train
  from gan_jax.eval import evaluate
  progress.log('%s: workdir %s', FLAGS.mode, files.resolve(workdir))
  try:
    if FLAGS.mode == 'train':
      train.train_and_evaluate(config, workdir)
    elif FLAGS.mode == 'eval':
      evaluate.evaluate(train.setup(config, training=False), workdir, FLAGS.step)
    else:
      evaluate.sample(train.setup(config, training=False), workdir, FLAGS.step)
  except KeyboardInterrupt:  # a second signal: training's first one stops at a step boundary
    print('Interrupted.', file=sys.stderr)
    sys.exit(130)
  except UserError as e:  # a diverged run (NonFiniteError) exits 3, other fixable problems 2
    print(f'error: {e}', file=sys.stderr)
    sys.exit(3 if isinstance(e, NonFiniteError) else 2)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
