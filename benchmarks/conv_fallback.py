"""Counts the convolutions XLA:CPU emits as a generic loop ("Falling back to unoptimized
convolution") in the conv step, outside and inside lax.scan.

  python benchmarks/conv_fallback.py                          # configs cifar10 and mnist_dcgan
  python benchmarks/conv_fallback.py --configs=mnist_dcgan

XLA:CPU's ConvCanonicalization pass runs on the entry computation only, so a convolution inside a
while-loop body (lax.scan: the k D-updates, and train.steps_per_call steps per dispatch) keeps the
non-canonical dimension labels of JAX's gradient convolutions and misses the fast-kernel check.
Each variant of the step is compiled here (nothing runs) with XLA's thunk_emitter log on, and the
fallback lines it prints are counted. The same for a single convolution's kernel gradient, plain
and under lax.scan, as the smallest reproduction. The last line is the summary, one
`key=value` per variant.
"""
import os
import sys
import tempfile

# before jaxlib loads: XLA reads its log settings once
os.environ['TF_CPP_VMODULE'] = 'thunk_emitter=2'
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.conv_speed import load_config  # noqa: E402  (its --configs flag too)
from benchmarks.timing import random_batch  # noqa: E402

FLAGS = flags.FLAGS

FALLBACK = 'Falling back to unoptimized convolution'


def captured(fn):
  """(fn(), fallback lines XLA logged meanwhile): the process's stderr, where XLA logs, goes to a
  file while fn runs (its thunk_emitter log is thousands of lines)."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode='w+') as log:
    os.dup2(log.fileno(), 2)
    try:
      result = fn()
    finally:
      os.dup2(saved, 2)
      os.close(saved)
    log.seek(0)
    return result, log.read().count(FALLBACK)


def single_convolution():
  """{variant: fallbacks} for one NHWC convolution's kernel gradient."""
  import jax
  import jax.numpy as jnp
  from jax import lax
  (x, w), _ = captured(lambda: (jnp.ones((8, 16, 16, 32)), jnp.full((3, 3, 32, 32), 0.01)))
  grad = jax.grad(lambda w: jnp.sum(lax.conv_general_dilated(
      x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')) ** 2))

  def scanned(unroll):
    return lambda w: lax.scan(lambda w, _: (w - 0.1 * grad(w), None), w, None, length=2, unroll=unroll)[0]
  variants = {'conv_grad': grad, 'conv_grad_scan': scanned(1), 'conv_grad_scan_unrolled': scanned(True)}
  return {name: captured(lambda f=f: jax.jit(f).lower(w).compile())[1] for name, f in variants.items()}


def step_variants(name):
  """{variant: fallbacks} for the config's training step: k=1 (no D scan), k=2 (D-updates in a
  scan), and two steps per dispatch (train_steps' scan)."""
  import jax
  import numpy as np
  from gan_jax import experiment, step
  from gan_jax.data import synthetic
  _, c = load_config(name, mirrored=False)
  real = random_batch(c)
  out = {}
  for label, k, n in (('k1', 1, 1), ('k2', 2, 1), ('k1_x2', 1, 2)):
    c.train.k = k
    (spec, state), _ = captured(lambda: experiment.build_models(c, synthetic.ArraySource(real)))
    batch = np.broadcast_to(real, (k,) + real.shape)
    if n == 1:
      fn, args = jax.jit(lambda s, b: step.train_step(spec, s, b)), (state, batch)
    else:
      fn, args = jax.jit(lambda s, b: step.train_steps(spec, s, b)), (state, np.broadcast_to(batch, (n,) + batch.shape))
    out[f'{name}_{label}'] = captured(lambda: fn.lower(*args).compile())[1]
  return out


def main(argv):
  del argv
  import jax
  counts = single_convolution()
  for name in FLAGS.configs:
    counts.update(step_variants(name))
  for key, n in counts.items():
    print(f'{key:28s} {n} convolution(s) emitted as a generic loop')
  print(f'conv_fallback jax={jax.__version__} ' + ' '.join(f'{k}={v}' for k, v in counts.items()))


if __name__ == '__main__':
  app.run(main)
