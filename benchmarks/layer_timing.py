"""Where the conv step's time goes: every layer of G and D (Dense, Conv, the transposed
convolutions, GroupNorm), its forward pass and its whole VJP (parameter and input gradients)
each jitted alone at the shapes the step gives it, weighted by how often one step runs it, summed,
against the whole jitted step.

  python benchmarks/layer_timing.py --config=configs/mnist_dcgan.py
  python benchmarks/layer_timing.py --config=configs/cifar10.py --rounds=5

Counts per step (Algorithm 1 with k D-updates on a batch of b): each D-update runs G forward on b
noise vectors and D forward and backward on b data and b samples; the G-update runs G forward and
backward and D forward and backward on b samples. So a D layer runs (2k + 1) forward+VJP passes
over b examples per step, a G layer k forward passes and one forward+VJP. D's calls are timed on
the whole batch (the step maps D over examples; XLA batches the map). What the layers leave out
(activations, losses, optimiser updates, the fusion of all of it in the whole step) is the
difference between the sum and the step.

Rounds interleave every layer and the step (benchmarks/timing.py's round_robin); each figure is
the median over rounds of the per-call wall time.
"""
import functools
import statistics
import sys
import os

from absl import app
from absl import flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

config_flags.DEFINE_config_file('config', 'configs/mnist_dcgan.py', 'The experiment config.')
flags.DEFINE_integer('rounds', 7, 'Interleaved rounds.')
flags.DEFINE_integer('calls', 10, 'Calls of each function per round.')
FLAGS = flags.FLAGS


def capture_layers(module, variables, *args, **kwargs):
  """[(name, unbound layer, its variables, its input)] of every leaf layer `module` calls."""
  import flax.linen as nn
  from gan_jax.models import dcgan
  leaf = (nn.Dense, nn.Conv, nn.ConvTranspose, nn.GroupNorm, dcgan.ConvTranspose4x4Stride2)
  found = []

  def interceptor(next_fun, args_, kwargs_, context):
    if context.method_name == '__call__' and isinstance(context.module, leaf):
      m = context.module
      found.append(('/'.join(m.scope.path), m.clone(parent=None), {'params': m.variables['params']}, args_[0]))
    return next_fun(*args_, **kwargs_)

  with nn.intercept_methods(interceptor):
    module.apply(variables, *args, **kwargs)
  return found


def layer_functions(layer, variables, x):
  """(forward, forward+VJP) of one layer, jitted, each a no-argument call that waits."""
  import jax
  import jax.numpy as jnp
  fwd = jax.jit(lambda v, x: layer.apply(v, x))
  out = fwd(variables, x)
  ct = jnp.ones_like(out)

  @jax.jit
  def vjp(v, x):
    y, pullback = jax.vjp(lambda v, x: layer.apply(v, x), v, x)
    return y, pullback(ct)

  return (lambda: jax.block_until_ready(fwd(variables, x)),
          lambda: jax.block_until_ready(vjp(variables, x)))


def main(argv):
  del argv
  import jax
  import numpy as np
  from gan_jax import experiment, step
  from gan_jax.data import folder  # noqa: F401  (image sizes come from the config)
  from benchmarks.timing import SplitShape
  c = FLAGS.config
  size = c.data.get('image_size') or (28 if 'mnist' in c.data.name else 32)
  channels = 1 if 'mnist' in c.data.name else 3
  shape = (size, size, channels)
  spec, state = experiment.build_models(c, SplitShape(shape))
  b, k = c.train.batch_size, c.train.k
  z = np.random.default_rng(0).normal(size=(b, spec.noise_dim)).astype(np.float32)
  x = np.random.default_rng(1).uniform(-1, 1, size=(b,) + shape).astype(np.float32)
  layers = ([('G ' + n, l, v, a, 'G') for n, l, v, a in capture_layers(spec.g, state.g_params, z)]
            + [('D ' + n, l, v, a, 'D') for n, l, v, a in capture_layers(spec.d, state.d_params, x, train=True,
                                                                          rngs={'dropout': jax.random.PRNGKey(0)})])
  fns, weights = {}, {}
  for name, layer, variables, inp, player in layers:
    fwd, vjp = layer_functions(layer, variables, inp)
    fns[name + ' fwd'], fns[name + ' vjp'] = fwd, vjp
    weights[name + ' fwd'] = k if player == 'G' else 0
    weights[name + ' vjp'] = 1 if player == 'G' else 2 * k + 1
  batch = np.stack([np.random.default_rng(2 + i).uniform(-1, 1, size=(b,) + shape).astype(np.float32) for i in range(k)])
  train = jax.jit(functools.partial(step.train_step, spec))
  holder = [state]

  def whole():
    holder[0], _ = train(holder[0], batch)
    jax.block_until_ready(holder[0])

  fns['step'], weights['step'] = whole, 0
  from benchmarks.timing import round_robin
  rounds = round_robin(fns, {n: FLAGS.calls for n in fns}, FLAGS.rounds, {n: 2 for n in fns})
  ms = {n: statistics.median(r[n][0] for r in rounds) / FLAGS.calls * 1e3 for n in fns}
  step_ms = ms['step']
  print(f'{c.data.name}, {spec.g.__class__.__name__}/{spec.d.__class__.__name__}, batch {b}, k={k}, '
        f'{FLAGS.rounds} rounds of {FLAGS.calls} calls; ms per call (median over rounds)')
  print(f'{"layer":44s} {"input":>18s} {"fwd":>8s} {"fwd+vjp":>8s} {"per step":>9s} {"share":>6s}')
  total = 0.0
  for name, layer, variables, inp, player in layers:
    per_step = ms[name + ' fwd'] * weights[name + ' fwd'] + ms[name + ' vjp'] * weights[name + ' vjp']
    total += per_step
    print(f'{name:44s} {str(tuple(inp.shape)):>18s} {ms[name + " fwd"]:8.2f} {ms[name + " vjp"]:8.2f} '
          f'{per_step:9.2f} {per_step / step_ms:6.1%}')
  print(f'{"layers, summed":44s} {"":>18s} {"":>8s} {"":>8s} {total:9.2f} {total / step_ms:6.1%}')
  print(f'{"the whole step":44s} {"":>18s} {"":>8s} {"":>8s} {step_ms:9.2f} {1:6.1%}')
  print(f'layer_timing config={c.data.name} step_ms={step_ms:.2f} layers_ms={total:.2f} share={total / step_ms:.3f}')


if __name__ == '__main__':
  app.run(main)
