"""Steps/s of the training loop's per-call work with mesh.api=pmap against mesh.api=shard_map, as
interleaved rounds in one process (benchmarks/timing.py): the compiled step, the batch placed for
it (pmap: this host's array as is; shard_map: stitched into a global array), the stop agreement and
the previous call's metrics read, as gan_jax/train.py does them. The batch is one real batch of the
config, kept on the host (the input pipeline's reading is the same either way and not timed).

  python benchmarks/mesh_api.py                                   # ring2d and the paper's MNIST MLP, 1 device
  python benchmarks/mesh_api.py --devices=4 --rounds=5 --steps=50  # 4 simulated CPU devices
  python benchmarks/mesh_api.py --configs=mnist_algorithm1 --manual_dir=../shared/data/mnist

The last line per config (grep '^mesh_api '): steps/s each way and shard_map/pmap as the median of
per-round ratios with a bootstrap 95% interval. Both ways run the same per-device program (their
results are equal bit for bit: tests/test_step.py), so the ratio is the cost of the placement.
"""
import os
import statistics
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list('configs', ['ring2d', 'mnist_algorithm1'], 'Configs under configs/ (MNIST ones need --manual_dir).')
flags.DEFINE_integer('devices', 1, 'Devices (more than the host has: simulated CPU devices).')
flags.DEFINE_integer('rounds', 9, 'Interleaved rounds.')
flags.DEFINE_integer('steps', 300, 'Calls per side per round.')
flags.DEFINE_integer('warmup', 30, 'Untimed calls per side first.')
flags.DEFINE_string('manual_dir', None, 'The official MNIST archives (MNIST configs).')


def sides(config_name: str) -> dict:
  import importlib
  import jax
  import numpy as np
  from gan_jax import experiment, step
  config = importlib.import_module(f'configs.{config_name}').get_config()
  config.mesh.num_devices = FLAGS.devices
  config.data.manual_dir = FLAGS.manual_dir
  config.train.steps_per_call = 1
  out = {}
  for api in ('pmap', 'shard_map'):
    config.mesh.api = api
    exp = experiment.setup(config)
    dp = exp.dp
    fn, agree = step.make_train_steps(exp.spec, dp), dp.any_process()
    batch = jax.tree.map(lambda a: np.ascontiguousarray(a[:, None]), next(exp.iterator))
    box = {'state': dp.replicate(exp.init_state), 'pending': None}

    def call(dp=dp, fn=fn, agree=agree, batch=batch, box=box):
      box['state'], metrics = fn(box['state'], dp.batch(batch))
      agree([0, 0])
      if box['pending'] is not None:
        dp.unreplicate(box['pending'])  # waits for the previous call, as train.py's finite check
      box['pending'] = metrics
    out[api] = call
  return out


def main(argv):
  del argv
  from gan_jax import host_memory, progress
  host_memory.keep_freed_memory()  # as launch.py
  import jax
  if FLAGS.devices > len(jax.devices()):
    jax.config.update('jax_num_cpu_devices', FLAGS.devices)
  progress.quiet_library_logs()
  print(f'jax {jax.__version__}; cpu: {timing.cpu_info()}; {FLAGS.devices} device(s)')
  for name in FLAGS.configs:
    if name.startswith('mnist') and not FLAGS.manual_dir:
      print(f'error: {name} needs --manual_dir (the official MNIST archives)', file=sys.stderr)
      sys.exit(2)
    fns = sides(name)
    rounds = timing.round_robin(fns, {k: FLAGS.steps for k in fns}, FLAGS.rounds, {k: FLAGS.warmup for k in fns})
    rate = {k: [FLAGS.steps / r[k][0] for r in rounds] for k in fns}
    ratio, lo, hi = timing.median_interval([s / p for s, p in zip(rate['shard_map'], rate['pmap'])], 2000)
    print(f'mesh_api config={name} devices={FLAGS.devices} pmap_steps_per_s={statistics.median(rate["pmap"]):.1f} '
          f'shard_map_steps_per_s={statistics.median(rate["shard_map"]):.1f} '
          f'shard_map_vs_pmap={ratio:.3f} [{lo:.3f}, {hi:.3f}] rounds={FLAGS.rounds} steps={FLAGS.steps}')


if __name__ == '__main__':
  app.run(main)
