"""XLA:CPU compile seconds and step milliseconds at LLVM optimisation level 1 (what the tests
compile at, tests/conftest.py) against XLA's default level 3 (what a run compiles at).

  taskset -c 0 python benchmarks/compile_level.py [--rounds=5] [--steps=20]

The level is an XLA flag, read once per process, so each side of a round is a fresh process
(`XLA_FLAGS=--xla_backend_optimization_level=N`, the persistent compilation cache off) that
compiles, for configs/ring2d.py, configs/mnist.py (the released recipe's model) and
configs/mnist_dcgan.py, the initial state (step._initial_state) and one training step
(step.train_step, k minibatches of the config's batch), then times --steps steps. Rounds are
interleaved, each starting on the other side. Prints each program's median compile seconds and
step milliseconds per level, and the median ratios (level 1 / level 3) with a bootstrap 95%
interval; and how far the two levels' states are apart after the timed steps (the last bits).
"""
import json
import os
import subprocess
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.timing import cpu_info, median_interval  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer('rounds', 5, 'Timed rounds (a process per level each).')
flags.DEFINE_integer('steps', 20, 'Training steps timed per config and process.')
flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the interval of the median ratio.')
flags.DEFINE_bool('child', False, 'Internal: run one side (the level XLA_FLAGS names) and print its JSON.')

CONFIGS = ('ring2d', 'mnist', 'mnist_dcgan')
LEVELS = (3, 1)


def one_side(steps: int) -> dict:
  """In a fresh process: per config, compile seconds of the initial state and the step, the
  step's milliseconds, and the final parameters' checksum."""
  import functools
  import importlib
  import time

  import jax
  import numpy as np
  from benchmarks.timing import SplitShape, data_shape, random_batch
  from gan_jax import step
  from gan_jax.experiment import build_models

  out = {}
  for name in CONFIGS:
    c = importlib.import_module(f'configs.{name}').get_config()
    points = c.data.scale == 'none'  # ring2d: raw coordinates in the plane, floats
    shape = (2,) if points else data_shape(c)
    spec, _ = build_models(c, SplitShape(shape), for_restore=True)
    t = time.perf_counter()
    init = jax.jit(functools.partial(step._initial_state, spec), static_argnums=(1,))
    init = init.lower(c.seed, shape, None, None).compile()
    init_s = time.perf_counter() - t
    state = init(c.seed, None, None)
    one = (np.random.default_rng(c.seed).normal(size=(c.train.batch_size,) + shape).astype(np.float32)
           if points else random_batch(c))
    batch = np.stack([one] * c.train.k)  # [k, batch, ...]
    t = time.perf_counter()
    fn = jax.jit(functools.partial(step.train_step, spec)).lower(state, batch).compile()
    step_s = time.perf_counter() - t
    state, _ = fn(state, batch)
    jax.block_until_ready(state)
    t = time.perf_counter()
    for _ in range(steps):
      state, _ = fn(state, batch)
    jax.block_until_ready(state)
    out[name] = {'init_s': init_s, 'step_s': step_s, 'step_ms': 1000 * (time.perf_counter() - t) / steps,
                 'params': [float(np.asarray(x, np.float64).sum()) for x in jax.tree.leaves(state.d_params)]}
  return out


def run_side(level: int, steps: int) -> dict:
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + f' --xla_backend_optimization_level={level}').strip()
  env['JAX_ENABLE_COMPILATION_CACHE'] = 'false'
  r = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', f'--steps={steps}'],
                     env=env, cwd=ROOT, capture_output=True, text=True, check=False)
  if r.returncode != 0:
    raise SystemExit(f'level {level} failed:\n{r.stderr[-2000:]}')
  return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  import numpy as np
  if FLAGS.child:
    print(json.dumps(one_side(FLAGS.steps)))
    return
  print(cpu_info())
  rounds = []
  for i in range(FLAGS.rounds):
    order = LEVELS if i % 2 == 0 else LEVELS[::-1]
    rounds.append({level: run_side(level, FLAGS.steps) for level in order})
    print(f'round {i + 1}/{FLAGS.rounds} done', flush=True)
  for name in CONFIGS:
    parts = []
    for key, unit in (('init_s', 's'), ('step_s', 's'), ('step_ms', 'ms')):
      a = [r[1][name][key] for r in rounds]
      b = [r[3][name][key] for r in rounds]
      med, lo, hi = median_interval([x / y for x, y in zip(a, b)], FLAGS.bootstrap)
      what = {'init_s': 'initial state compile', 'step_s': 'step compile', 'step_ms': 'step'}[key]
      parts.append(f'{what} {np.median(b):.2f} -> {np.median(a):.2f} {unit} ({med:.2f}x, 95% {lo:.2f}-{hi:.2f})')
    p1, p3 = np.array(rounds[0][1][name]['params']), np.array(rounds[0][3][name]['params'])
    differ = 'equal' if np.array_equal(p1, p3) else f'differ (largest relative {np.max(np.abs(p1 - p3) / np.maximum(np.abs(p3), 1e-30)):.1e})'
    print(f'configs/{name}.py, level 3 -> 1: ' + '; '.join(parts) + f'; D after {FLAGS.steps + 1} steps: sums {differ}')
  print(f'{len(rounds)} rounds, interleaved')


if __name__ == '__main__':
  app.run(main)
