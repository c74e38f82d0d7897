"""What page faults cost gan_jax's CPU step: each side timed with freed host memory kept for reuse
(gan_jax/host_memory.py, what launch.py does by default) and returned to the system (glibc's way
with large blocks), interleaved in one process by switching glibc's setting before each turn.

  python benchmarks/host_memory.py                 # mnist_algorithm1 (the MLP), mnist_dcgan, cifar10
  python benchmarks/host_memory.py --configs=mnist_dcgan --rounds=5 --steps=10 --warmup=10  # smoke

Sides (conv_speed.jax_sides: a fixed device-resident batch, each dispatch waited for; R1 and the
average of G off), each "kept" and "returned": one step per dispatch, and the config's
train.steps_per_call steps per dispatch when that is > 1. Reported per side: median steps/s over
--rounds rounds of --steps steps, median minor page faults per step in the timed calls, and kept /
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
import importlib
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


def load_config(name: str):
  """conv_speed's config check for the dcgan pair; other configs (the MLP) likewise without R1 and
  the average of G, the step alone."""
  module = os.path.splitext(os.path.basename(name))[0]
  if importlib.util.find_spec(f'configs.{module}') is None:
    raise conv_speed.BadInput(f'--configs: no configs/{module}.py')
  c = importlib.import_module(f'configs.{module}').get_config()
  if (c.model.generator, c.model.discriminator) == ('dcgan', 'dcgan'):
    return conv_speed.load_config(name)
  c.train.ema_decay, c.train.ema_start_step = 0.0, 0
  if c.data.name not in conv_speed.DATA_SHAPES:
    raise conv_speed.BadInput(f'--configs={module}: data.name={c.data.name} has no known image shape')
  return module, c


def both_ways(fns: dict, faults: dict):
  """{(side, way): call} for way in kept, returned: each call counts its minor page faults into
  faults[(side, way)]."""
  out = {}
  for side, fn in fns.items():
    for way in WAYS:
      def run(fn=fn, key=(side, way)):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn()
        faults.setdefault(key, []).append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
      out[(side, way)] = run
  return out


def interleaved(sides: dict, calls: dict, settle: dict):
  """[{(side, way): wall seconds}] per round, each round starting one side later
  (timing.round_robin's order). glibc is switched to the side's way before its turn, and
  settle[key] untimed calls follow the switch: returning memory trims the heap, which the next
  kept side must grow again before it reaches its steady state."""
  from gan_jax import host_memory
  switch = {'kept': host_memory.keep_freed_memory, 'returned': host_memory.return_freed_memory}
  keys, out = list(sides), []
  for r in range(FLAGS.rounds):
    times = {}
    for key in keys[r % len(keys):] + keys[:r % len(keys)]:
      switch[key[1]]()
      timing.time_calls(sides[key], settle[key])
      times[key] = timing.time_calls(sides[key], calls[key])[0]
    out.append(times)
  return out


def run_config(name: str):
  module, c = load_config(name)
  real = conv_speed.random_batch(c)
  fns, per_call, _, _ = conv_speed.jax_sides(c, real)
  faults = {}
  sides = both_ways(fns, faults)
  n = c.train.steps_per_call
  steps = -(-FLAGS.steps // n) * n
  calls = {key: max(1, steps // per_call[key[0]]) for key in sides}
  settle = {key: -(-FLAGS.settle // per_call[key[0]]) for key in sides}
  for key, fn in sides.items():  # compile, then grow the kept heap to its steady size
    timing.time_calls(fn, 1 + -(-FLAGS.warmup // per_call[key[0]]))
  t0 = time.perf_counter()
  rounds = interleaved(sides, calls, settle)
  print(f'{module}: timed in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  rates = {key: [steps / r[key] for r in rounds] for key in sides}
  print(f'\n== {module}: {FLAGS.rounds} interleaved rounds of {steps} steps per side after {FLAGS.warmup} '
        f'warm-up steps and {FLAGS.settle} untimed steps after each switch; median per round, '
        'bootstrap 95% interval')
  print(f'{"side":<26}{"steps/s":>9}{"faults/step":>13}  per round')
  for key in sides:
    timed = [f for i, f in enumerate(faults[key]) if is_timed(i, calls[key], settle[key], FLAGS.warmup, per_call[key[0]])]
    print(f'{" ".join(key):<26}{statistics.median(rates[key]):>9.2f}{statistics.median(timed) / per_call[key[0]]:>13.0f}  '
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


def is_timed(i: int, calls: int, settle: int, warmup: int, per_call: int) -> bool:
  """Whether a side's i-th call was a timed one (not compiling, warming up or settling)."""
  first = 1 + -(-warmup // per_call)
  return i >= first and (i - first) % (settle + calls) >= settle


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
      load_config(name)
  except conv_speed.BadInput as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  import jax
  print(f'jax {jax.__version__}; cpu: {timing.cpu_info()}')
  for name in FLAGS.configs:
    run_config(name)


if __name__ == '__main__':
  app.run(main)
