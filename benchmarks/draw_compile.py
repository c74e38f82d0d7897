"""XLA compile seconds of random draws over several axes against the same draws made flat and
reshaped (the same values: jax's partitionable threefry numbers elements in row-major order).

  taskset -c 0 python benchmarks/draw_compile.py [--rounds=5]

XLA:CPU compiles jax's threefry counter arithmetic per axis of the drawn shape, so a draw over a
conv kernel's four axes, or a per-example mask under vmap, compiles several times slower than the
same draw over one or two axes. Cases: flax's lecun_normal on a 4x4x16x8 kernel against
gan_jax's conv_lecun_normal (drawn as the [fan_in, out] matrix); a 28x28 Bernoulli mask per
example (vmap, 64 examples) against one drawn flat (games/inpainting.py); the initial state
(step._initial_state, every run's first program) of configs/mnist_dcgan.py and configs/cifar10.py
with their conv kernels drawn by flax's lecun_normal against conv_lecun_normal. Each side traced,
lowered and compiled afresh, interleaved (each round starting on the other side), --rounds
rounds; the persistent compilation cache is off. Prints each side's median seconds and the
median ratio with a bootstrap 95% interval, after checking both sides give equal values.
"""
import os
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.timing import SplitShape, cpu_info, data_shape, median_interval, round_robin  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer('rounds', 5, 'Timed rounds.')
flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the interval of the median ratio.')


def cases():
  """name -> (program over several axes, the same program drawn flat), each a function of no
  arguments that traces, lowers and compiles its program anew: (executable, its arguments)."""
  import importlib

  import flax.linen as nn
  import jax
  from gan_jax import step
  from gan_jax.experiment import build_models
  from gan_jax.models import dcgan

  key = jax.random.PRNGKey(0)
  keys = jax.random.split(key, 64)
  kernel = (4, 4, 16, 8)

  def fresh(fn, *args):
    return jax.jit(fn).lower(*args).compile(), args

  out = {
      'lecun_normal, 4x4x16x8 kernel': (
          lambda: fresh(lambda k: nn.initializers.lecun_normal()(k, kernel), key),
          lambda: fresh(lambda k: dcgan.conv_lecun_normal()(k, kernel), key)),
      'Bernoulli 28x28 mask per example, vmap over 64': (
          lambda: fresh(jax.vmap(lambda k: jax.random.bernoulli(k, 0.5, (28, 28))), keys),
          lambda: fresh(jax.vmap(lambda k: jax.random.bernoulli(k, 0.5, (784,)).reshape(28, 28)), keys)),
  }

  def initial_state(c, shape, spec, init):
    def program():
      dcgan.conv_lecun_normal = init  # looked up when the modules are traced
      try:
        return fresh(lambda seed: step._initial_state(spec, seed, shape, None, None), c.seed)
      finally:
        dcgan.conv_lecun_normal = ours
    return program

  ours = dcgan.conv_lecun_normal
  for name in ('mnist_dcgan', 'cifar10'):
    c = importlib.import_module(f'configs.{name}').get_config()
    shape = data_shape(c)
    spec, _ = build_models(c, SplitShape(shape), for_restore=True)
    out[f'configs/{name}.py initial state'] = (initial_state(c, shape, spec, nn.initializers.lecun_normal),
                                               initial_state(c, shape, spec, ours))
  return out


def main(argv):
  del argv
  import jax
  import numpy as np

  print(cpu_info())
  for name, (several, flat) in cases().items():
    results = [fn(*args) for fn, args in (several(), flat())]
    jax.tree.map(np.testing.assert_array_equal, *results)
    rounds = round_robin({'several': several, 'flat': flat},
                         {'several': 1, 'flat': 1}, FLAGS.rounds, {'several': 0, 'flat': 0})
    a = [r['several'][0] for r in rounds]
    b = [r['flat'][0] for r in rounds]
    med, lo, hi = median_interval([x / y for x, y in zip(a, b)], FLAGS.bootstrap)
    print(f'{name}: {np.median(a):.2f} s over its axes, {np.median(b):.2f} s flat to compile; '
          f'{med:.1f}x (95% {lo:.1f}-{hi:.1f}), {len(rounds)} rounds; equal values')


if __name__ == '__main__':
  os.environ.pop('JAX_COMPILATION_CACHE_DIR', None)  # compile every time
  app.run(main)
