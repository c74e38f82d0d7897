"""What page faults cost gan_jax's CPU step: each side timed with freed host memory kept for reuse
(gan_jax/host_memory.py, what launch.py does by default) and returned to the system (glibc's way
with large blocks), interleaved in one process by switching glibc's setting before each turn.

  python benchmarks/host_memory.py                 # mnist_algorithm1 (the MLP), mnist_dcgan, cifar10
  python benchmarks/host_memory.py --configs=mnist_dcgan --rounds=5 --steps=10 --warmup=10  # smoke

Sides (conv_speed.jax_sides: a fixed device-resident batch, each dispatch waited for; R1 and the
average of G off), each "kept" and "returned": one step per dispatch, and the config's
train.steps_per_call steps per dispatch when that is > 1. Reported per side: median steps/s over
--rounds rounds of --steps steps, minor page faults per step (the median over rounds of the timed calls' faults), and kept /
returned as the median of per-round ratios with a bootstrap 95% interval (benchmarks/timing.py).
No PyTorch: its allocator goes through the same malloc, and conv_speed.py and step_speed.py give
both sides the same setting (--host_memory); switched within one process as here, PyTorch's
eager step kept reusing freed blocks in its "returned" turns, so its cost could not be measured
this way.

"returned" sets glibc's M_MMAP_MAX and M_TRIM_THRESHOLD back to their defaults but keeps the one
malloc arena, which cannot be undone in a running process; its fault counts match those of a
process left at glibc's defaults (mnist_dcgan ~8,200 per step, cifar10 ~27,800; 2026-12-02).
Returning memory trims the heap that kept memory must grow again, so --settle untimed steps
follow every switch.

Last line per config (grep '^host_memory '): steps/s both ways and their ratio, per side.
"""
import os
import resource
import statistics
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import conv_speed, timing  # noqa: E402  (conv_speed defines the shared flags)

FLAGS = flags.FLAGS
flags.DEFINE_integer('settle', 10, 'Untimed steps of each side after glibc is switched to its way.')
WAYS = ('kept', 'returned')
FLAGS.set_default('configs', ['mnist_algorithm1', 'mnist_dcgan', 'cifar10'])
FLAGS.set_default('warmup', 20)


def interleaved(fns: dict, calls: dict, settle: dict):
  """[{(side, way): (wall seconds, minor page faults)}] per round, every side both ways, each round
  starting one later (timing.round_robin's order). glibc is switched to the way before each turn,
  and settle[side] untimed calls follow the switch: returning memory trims the heap, which the
  next kept turn must grow again before it reaches its steady state."""
  from gan_jax import host_memory
  switch = {'kept': host_memory.keep_freed_memory, 'returned': host_memory.return_freed_memory}
  keys, out = [(side, way) for side in fns for way in WAYS], []
  for r in range(FLAGS.rounds):
    times = {}
    for side, way in keys[r % len(keys):] + keys[:r % len(keys)]:
      switch[way]()
      timing.time_calls(fns[side], settle[side])
      before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
      seconds = timing.time_calls(fns[side], calls[side])[0]
      times[(side, way)] = seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    out.append(times)
  return out


def run_config(name: str):
  module, c = conv_speed.load_config(name, mirrored=False)
  fns, per_call, _, _ = conv_speed.jax_sides(c, timing.random_batch(c))
  n = c.train.steps_per_call
  steps = -(-FLAGS.steps // n) * n
  calls = {side: max(1, steps // per_call[side]) for side in fns}
  settle = {side: -(-FLAGS.settle // per_call[side]) for side in fns}
  for side, fn in fns.items():  # compile, then grow the kept heap to its steady size
    timing.time_calls(fn, 1 + -(-FLAGS.warmup // per_call[side]))
  t0 = time.perf_counter()
  rounds = interleaved(fns, calls, settle)
  print(f'{module}: timed in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  rates = {key: [steps / r[key][0] for r in rounds] for key in rounds[0]}
  print(f'\n== {module}: {FLAGS.rounds} interleaved rounds of {steps} steps per side after {FLAGS.warmup} '
        f'warm-up steps and {FLAGS.settle} untimed steps after each switch; median per round, '
        'bootstrap 95% interval')
  print(f'{"side":<26}{"steps/s":>9}{"faults/step":>13}  per round')
  for key in rates:
    faults = statistics.median(r[key][1] for r in rounds) / steps
    print(f'{" ".join(key):<26}{statistics.median(rates[key]):>9.2f}{faults:>13.0f}  '
          + ' '.join(f'{v:.2f}' for v in rates[key]))
  fields = [f'config={module}']
  for side in fns:
    ratios = [k / r for k, r in zip(rates[(side, 'kept')], rates[(side, 'returned')])]
    med, lo, hi = timing.median_interval(ratios, FLAGS.bootstrap)
    print(f'{side}: kept / returned {med:.2f} [{lo:.2f}, {hi:.2f}]')
    key = side.replace('gan_jax x', 'fused').replace('gan_jax', 'jax')
    fields += [f'{key}_kept_steps_s={statistics.median(rates[(side, "kept")]):.2f}',
               f'{key}_returned_steps_s={statistics.median(rates[(side, "returned")]):.2f}',
               f'{key}_kept_vs_returned={med:.2f} [{lo:.2f}, {hi:.2f}]']
  print('host_memory ' + ' '.join(fields + [f'rounds={FLAGS.rounds}', f'steps={steps}']), flush=True)


def main(argv):
  del argv
  timing.limit_isa(FLAGS.isa)
  from gan_jax import host_memory, progress
  if not host_memory.keep_freed_memory():  # before JAX's backend starts: its threads share one arena
    print('error: this benchmark switches glibc\'s malloc; this process does not run on glibc', file=sys.stderr)
    sys.exit(2)
  progress.quiet_library_logs()
  try:
    for name in FLAGS.configs:
      conv_speed.load_config(name, mirrored=False)
  except conv_speed.BadInput as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  import jax
  print(f'jax {jax.__version__}; cpu: {timing.cpu_info()}')
  for name in FLAGS.configs:
    run_config(name)


if __name__ == '__main__':
  app.run(main)
