"""XLA:CPU compile seconds and step milliseconds of the build the tests compile (tests/conftest.py:
LLVM optimisation level 1 and XLA's legacy fusion emitters), of level 1 alone, and of level 0 with
the legacy emitters (what the tests' multi-process runs compile: conftest.compile_bound), against
XLA's defaults (level 3, the new fusion emitters: what a run compiles).

  taskset -c 0 python benchmarks/compile_level.py [--rounds=5] [--steps=20]

These are XLA flags, read once per process, so each side of a round is a fresh process (its
`XLA_FLAGS`, the persistent compilation cache off) that compiles, for configs/ring2d.py,
configs/mnist.py (the released recipe's model) and configs/mnist_dcgan.py, the initial state (step._initial_state) and one training step
(step.train_step, k minibatches of the config's batch), then times --steps steps. Rounds are
interleaved, each starting on another side. Prints each program's median compile seconds and
step milliseconds per side, and the median ratios (side / defaults) with a bootstrap 95%
interval; and how far each side's state is from the defaults' after the timed steps (the last bits).
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
flags.DEFINE_integer('rounds', 5, 'Timed rounds (a process per side each).')
flags.DEFINE_integer('steps', 20, 'Training steps timed per config and process.')
flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the interval of the median ratio.')
flags.DEFINE_bool('child', False, 'Internal: run one side (the build XLA_FLAGS names) and print its JSON.')

CONFIGS = ('ring2d', 'mnist', 'mnist_dcgan')
SIDES = {  # name -> XLA_FLAGS; the first is the reference
    'defaults': '--xla_backend_optimization_level=3 --xla_cpu_use_fusion_emitters=true',
    'level 1': '--xla_backend_optimization_level=1',
    'level 1, legacy emitters': '--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false',
    'level 0, legacy emitters': '--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false',
}


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


def run_side(name: str, steps: int) -> dict:
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + ' ' + SIDES[name]).strip()
  env['JAX_ENABLE_COMPILATION_CACHE'] = 'false'
  r = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', f'--steps={steps}'],
                     env=env, cwd=ROOT, capture_output=True, text=True, check=False)
  if r.returncode != 0:
    raise SystemExit(f'{name} failed:\n{r.stderr[-2000:]}')
  return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  import numpy as np
  if FLAGS.child:
    print(json.dumps(one_side(FLAGS.steps)))
    return
  print(cpu_info())
  names = list(SIDES)
  rounds = []
  for i in range(FLAGS.rounds):
    order = names[i % len(names):] + names[:i % len(names)]
    rounds.append({name: run_side(name, FLAGS.steps) for name in order})
    print(f'round {i + 1}/{FLAGS.rounds} done', flush=True)
  ref = names[0]
  for config in CONFIGS:
    for side in names[1:]:
      parts = []
      for key, unit in (('init_s', 's'), ('step_s', 's'), ('step_ms', 'ms')):
        a = [r[side][config][key] for r in rounds]
        b = [r[ref][config][key] for r in rounds]
        med, lo, hi = median_interval([x / y for x, y in zip(a, b)], FLAGS.bootstrap)
        what = {'init_s': 'initial state compile', 'step_s': 'step compile', 'step_ms': 'step'}[key]
        parts.append(f'{what} {np.median(b):.2f} -> {np.median(a):.2f} {unit} ({med:.2f}x, 95% {lo:.2f}-{hi:.2f})')
      p, q = np.array(rounds[0][side][config]['params']), np.array(rounds[0][ref][config]['params'])
      differ = 'equal' if np.array_equal(p, q) else f'differ (largest relative {np.max(np.abs(p - q) / np.maximum(np.abs(q), 1e-30)):.1e})'
      print(f'configs/{config}.py, {ref} -> {side}: ' + '; '.join(parts) + f'; D after {FLAGS.steps + 1} steps: sums {differ}')
  print(f'{len(rounds)} rounds, interleaved; sides: ' + '; '.join(f'{k}: {v}' for k, v in SIDES.items()))


if __name__ == '__main__':
  app.run(main)
