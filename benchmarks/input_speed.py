"""The training step fed by the real input pipeline against the same step on a batch already on
the device: the pipeline must cost < 5% of the step rate.

  python benchmarks/input_speed.py --config.data.manual_dir=../shared/data/mnist
  python benchmarks/input_speed.py --config=configs/folder.py --config.data.path=/path/to/photos

One compiled step (train.steps_per_call steps per dispatch, as train.py runs it), two feeds:
  streamed  next(exp.iterator) per step, stacked per call, uint8 host -> device (train.py's loop)
  resident  one stacked batch placed on the device once and reused (no transfer: checked with
            jax.transfer_guard)
timed interleaved, streamed then resident, --steps steps each per round, --rounds rounds after
one untimed warm-up round. Every call is waited for (train.py waits one call late, so its host
work may overlap the step: this is the stricter test). Both feeds share one evolving state, and
interleaving puts machine drift (other jobs, page cache) on both alike. Prints each round's ratio
of step rates (streamed / resident), their median with a bootstrap 95% interval, the process CPU
time per step of each feed (the input's host cost, which other jobs on the cores hide from the
wall-clock ratio), the time the main thread waits for a call's batches while the device idles
(where a too-short data.prefetch shows), and a verdict line.
"""
import os
import statistics
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.timing import cpu_info, median_interval, time_calls  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', os.path.join(ROOT, 'configs', 'mnist.py'), 'Experiment config file.', lock_config=True)
flags.DEFINE_integer('rounds', 7, 'Timed rounds (each: --steps streamed, then --steps resident).')
flags.DEFINE_integer('steps', 100, 'Training steps per feed per round; rounded up to a multiple of '
                     'train.steps_per_call.')
flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the interval of the median ratio.')
flags.DEFINE_float('threshold', 95.0, 'Pass when the streamed rate is at least this % of the resident one.')


def feeds(exp):
  """(streamed, resident, waited, steps per call): the feeds each run one dispatch and wait for
  it; waited() gives (and resets) the seconds streamed spent assembling batches, when the device
  has nothing to do."""
  import jax
  import numpy as np
  from gan_jax import parallel, step
  per_call = exp.config.train.steps_per_call
  devices = parallel.pmap_devices(exp.devices)
  p_steps = step.make_p_train_steps(exp.spec, devices)
  box = {'state': parallel.replicate(exp.init_state, len(exp.devices)), 'wait': 0.0}

  def streamed():
    t0 = time.perf_counter()
    batches = np.stack([next(exp.iterator) for _ in range(per_call)], axis=1)
    box['wait'] += time.perf_counter() - t0
    box['state'], m = p_steps(box['state'], batches)
    jax.block_until_ready(m)

  # pmap's own output sharding: placing the batch with it makes the step take it as is
  place = jax.pmap(lambda x: x, devices=devices)
  on_device = jax.block_until_ready(place(np.stack([next(exp.iterator) for _ in range(per_call)], axis=1)))

  def resident():
    box['state'], m = p_steps(box['state'], on_device)
    jax.block_until_ready(m)

  def waited():
    seconds, box['wait'] = box['wait'], 0.0
    return seconds

  return streamed, resident, waited, per_call


def measure(streamed, resident, waited, calls: int, rounds: int):
  """[((wall, cpu) streamed, (wall, cpu) resident, streamed's batch wait)] per round, after one
  untimed round of each."""
  import jax
  streamed()  # the first call compiles and moves the initial state to the device
  time_calls(streamed, calls)
  with jax.transfer_guard('disallow'):  # fails loudly if the resident feed ever transfers
    time_calls(resident, calls)
    out = []
    for _ in range(rounds):
      with jax.transfer_guard('allow'):
        waited()
        a = time_calls(streamed, calls)
        wait = waited()
      out.append((a, time_calls(resident, calls), wait))
  return out


def report(config, name, times, steps, per_call, prefetch):
  import jax
  device = jax.devices()[0]
  ratios = [100 * b[0] / a[0] for a, b, _ in times]  # streamed rate / resident rate, in %
  med, lo, hi = median_interval(ratios, FLAGS.bootstrap)
  rate = lambda secs: steps / secs
  print(f'\nconfig {name}: data {config.data.name}, batch {config.train.batch_size}, k={config.train.k}, '
        f'steps_per_call {per_call}, data.prefetch {prefetch}, {config.model.generator}/{config.model.discriminator}')
  print(f'device: {device.platform} ({device.device_kind}), jax {jax.__version__}; cpu: {cpu_info()}')
  print(f'{steps} steps per feed per round, {len(times)} rounds (streamed then resident), after 1 warm-up round\n')
  print(f'{"round":>5}{"streamed steps/s":>18}{"resident steps/s":>18}{"streamed/resident":>19}')
  for i, ((a, b, _), r) in enumerate(zip(times, ratios)):
    print(f'{i + 1:>5}{rate(a[0]):>18.1f}{rate(b[0]):>18.1f}{r:>18.1f}%')
  median_a = statistics.median(rate(a[0]) for a, _, _ in times)
  median_b = statistics.median(rate(b[0]) for _, b, _ in times)
  print(f'{"median":>5}{median_a:>18.1f}{median_b:>18.1f}{med:>18.1f}%')
  cpu_a = statistics.median(1e3 * a[1] / steps for a, _, _ in times)
  cpu_b = statistics.median(1e3 * b[1] / steps for _, b, _ in times)
  wait = statistics.median(1e3 * w / steps for _, _, w in times)
  extra = cpu_a - cpu_b
  print(f'\nprocess CPU per step (all threads): streamed {cpu_a:.2f} ms, resident {cpu_b:.2f} ms. The input '
        f'adds {extra:.2f} ms ({100 * extra / cpu_b:+.1f}%): where the step keeps every core busy (an idle '
        f'machine), streamed would run at about {100 * cpu_b / cpu_a:.1f}% of resident')
  print(f'batch wait (main thread assembling a call\'s batches, the device idle): {wait:.2f} ms per step = '
        f'{100 * wait * median_b / 1e3:.1f}% of a resident step; data.prefetch={prefetch} batches read ahead '
        f'for {per_call} per call')
  verdict = 'yes' if lo >= FLAGS.threshold else ('no' if hi < FLAGS.threshold else 'undecided (interval straddles it)')
  print(f'\nstreamed step = {med:.1f}% of device-resident (95% CI {lo:.1f}–{hi:.1f}%); '
        f'within {100 - FLAGS.threshold:g}%: {verdict}')


def main(argv):
  del argv
  config = FLAGS.config
  import jax  # after flag parsing: the CPU device count must be set before JAX's backend starts
  if config.mesh.platform == 'cpu' and config.mesh.num_devices:
    jax.config.update('jax_num_cpu_devices', config.mesh.num_devices)
  from gan_jax import progress
  progress.quiet_library_logs()  # before tfds is imported: it warns at import
  from gan_jax import train
  from gan_jax.errors import UserError
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(FLAGS['config'])))[0]
  try:
    exp = train.setup(config)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  streamed, resident, waited, per_call = feeds(exp)
  calls = -(-FLAGS.steps // per_call)
  times = measure(streamed, resident, waited, calls, FLAGS.rounds)
  report(config, name, times, calls * per_call, per_call, config.data.prefetch)


if __name__ == '__main__':
  app.run(main)
