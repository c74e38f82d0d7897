"""Steps/s of the paper's MNIST training step: gan_jax against the same model in plain PyTorch.

  pip install -r benchmarks/requirements-bench.txt     # torch 2.13.0 (CPU), kept out of requirements.txt
  python benchmarks/step_speed.py --manual_dir=../shared/data/mnist

Same model and algorithm (configs/mnist_algorithm1.py: maxout D with dropout 0.8/0.5, ReLU/sigmoid
G, batch 100, Algorithm 1 with k = 1, SGD with momentum, non-saturating G loss); both on the same thread count, after warm-up, median over --steps steps
(each step waited for). Also gan_jax fed by its real tfds input pipeline instead of one fixed
in-memory batch, with the moving average of G (configs/mnist_ema.py), XLA's FLOP count per
step, and the fraction of this machine's measured fp32 matmul peak. Prints ratios measured in
this one run.
"""
import dataclasses
import os
import statistics
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_integer('steps', 300, 'Timed steps per implementation (after warm-up).')
flags.DEFINE_integer('warmup', 30, 'Untimed steps first.')
flags.DEFINE_integer('threads', os.cpu_count(), 'PyTorch CPU threads; XLA uses every core, so '
                     'the default (all cores) makes them equal.')
flags.DEFINE_string('manual_dir', None, 'Official MNIST archives (for the real-input timing).')
flags.DEFINE_string('data_dir', None, 'tfds data_dir (prepared data).')
flags.DEFINE_bool('torch', True, 'Also time PyTorch (needs torch installed).')
flags.DEFINE_string('platform', None, 'JAX platform (cpu, gpu); torch uses cuda when gpu.')


def median_rate(step_fn, steps, warmup):
  for _ in range(warmup):
    step_fn()
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    step_fn()
    times.append(time.perf_counter() - t0)
  return 1.0 / statistics.median(times)


def jax_setup():
  import jax
  import numpy as np
  from configs import mnist_algorithm1
  from gan_jax import parallel, step, train
  c = mnist_algorithm1.get_config()  # alternating, as the PyTorch baseline
  c.data.manual_dir, c.data.data_dir, c.mesh.num_devices = FLAGS.manual_dir, FLAGS.data_dir, 1
  c.mesh.platform = FLAGS.platform
  exp = train.setup(c)
  p_step = step.make_p_train_step(exp.spec, exp.devices)
  box = {'state': parallel.replicate(exp.init_state, 1)}
  fixed = next(exp.iterator)

  def fixed_step():
    box['state'], m = p_step(box['state'], fixed)
    jax.block_until_ready(m)

  def pipeline_step():
    box['state'], m = p_step(box['state'], next(exp.iterator))
    jax.block_until_ready(m)

  fused_n = 10
  fused = step.make_p_train_steps(exp.spec, exp.devices)
  fused_batches = np.stack([fixed] * fused_n, axis=1)  # [devices, steps, k, b, ...]

  def fused_steps():
    box['state'], m = fused(box['state'], fused_batches)
    jax.block_until_ready(m)

  # configs/mnist_ema.py's step: the same, plus the moving average of G's weights
  ema_spec = dataclasses.replace(exp.spec, ema_decay=0.99998)
  p_ema_step, p_ema_steps = step.make_p_train_step(ema_spec, exp.devices), step.make_p_train_steps(ema_spec, exp.devices)
  box['ema'] = parallel.replicate(exp.init_state.replace(g_ema=exp.init_state.g_params), 1)

  def ema_step():
    box['ema'], m = p_ema_step(box['ema'], fixed)
    jax.block_until_ready(m)

  def ema_steps():
    box['ema'], m = p_ema_steps(box['ema'], fused_batches)
    jax.block_until_ready(m)

  lowered = jax.jit(lambda s, b: step.train_step(exp.spec, s, b)).lower(exp.init_state, fixed[0])
  cost = lowered.compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return fixed_step, pipeline_step, (ema_step, ema_steps), (fused_steps, fused_n), float(cost.get('flops', float('nan')))


def matmul_peak():
  """Measured fp32 FLOP/s of a large matmul: this machine's practical peak."""
  import jax
  import jax.numpy as jnp
  a = jnp.ones((2048, 2048), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(10):
    f(a).block_until_ready()
  return 10 * 2 * 2048 ** 3 / (time.perf_counter() - t0)


def torch_setup():
  import torch
  from torch import nn
  torch.set_num_threads(FLAGS.threads)
  dev = 'cuda' if FLAGS.platform == 'gpu' else 'cpu'

  def uniform_(layer, r):
    nn.init.uniform_(layer.weight, -r, r)
    nn.init.zeros_(layer.bias)
    return layer

  class Maxout(nn.Module):
    def __init__(self, n_in, units, pieces):
      super().__init__()
      self.units, self.pieces = units, pieces
      self.lin = uniform_(nn.Linear(n_in, units * pieces), 0.005)

    def forward(self, x):
      return self.lin(x).view(-1, self.units, self.pieces).max(-1).values

  g = nn.Sequential(uniform_(nn.Linear(100, 1200), 0.05), nn.ReLU(), uniform_(nn.Linear(1200, 1200), 0.05),
                    nn.ReLU(), uniform_(nn.Linear(1200, 784), 0.05), nn.Sigmoid()).to(dev)
  d = nn.Sequential(nn.Dropout(0.2), Maxout(784, 240, 5), nn.Dropout(0.5), Maxout(240, 240, 5),
                    nn.Dropout(0.5), uniform_(nn.Linear(240, 1), 0.005)).to(dev)
  g_opt = torch.optim.SGD(g.parameters(), lr=0.1, momentum=0.5)
  d_opt = torch.optim.SGD(d.parameters(), lr=0.1, momentum=0.5)
  bce = nn.BCEWithLogitsLoss()
  real = torch.rand(100, 784, device=dev)
  ones, zeros = torch.ones(100, 1, device=dev), torch.zeros(100, 1, device=dev)
  s3 = 3 ** 0.5

  def one_step():
    z = (torch.rand(100, 100, device=dev) * 2 - 1) * s3
    d_loss = 0.5 * (bce(d(real), ones) + bce(d(g(z).detach()), zeros))  # AdversaryCost2's scale
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    z = (torch.rand(100, 100, device=dev) * 2 - 1) * s3
    g_loss = bce(d(g(z)), ones)
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    if dev == 'cuda':
      torch.cuda.synchronize()

  return one_step, torch.__version__


def main(argv):
  del argv
  import jax
  from gan_jax import progress
  progress.quiet_library_logs()
  from gan_jax.errors import UserError
  try:
    fixed_step, pipeline_step, (ema_step, ema_steps), (fused_steps, fused_n), flops = jax_setup()
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  fused_rate = lambda fn: fused_n * median_rate(fn, max(20, FLAGS.steps // fused_n), max(1, FLAGS.warmup // fused_n))
  rates = {'gan_jax (fixed batch)': median_rate(fixed_step, FLAGS.steps, FLAGS.warmup),
           'gan_jax (tfds input)': median_rate(pipeline_step, FLAGS.steps, FLAGS.warmup),
           'gan_jax + EMA of G': median_rate(ema_step, FLAGS.steps, FLAGS.warmup),
           f'gan_jax ({fused_n} steps/dispatch)': fused_rate(fused_steps),
           f'+ EMA of G ({fused_n} steps/dispatch)': fused_rate(ema_steps)}
  torch_version = None
  if FLAGS.torch:
    torch_step, torch_version = torch_setup()
    rates[f'PyTorch {torch_version} eager'] = median_rate(torch_step, FLAGS.steps, FLAGS.warmup)
  peak = matmul_peak()
  device = jax.devices()[0]
  print(f'\ndevice: {device.platform} ({device.device_kind}), threads {FLAGS.threads}, '
        f'median over {FLAGS.steps} steps after {FLAGS.warmup} warm-up')
  print(f'{"implementation":<30}{"steps/s":>10}')
  for name, r in rates.items():
    print(f'{name:<30}{r:>10.1f}')
  print(f'\nXLA FLOPs per step: {flops / 1e9:.2f} GFLOP; measured matmul peak {peak / 1e9:.0f} GFLOP/s; '
        f'gan_jax at {100 * flops * rates["gan_jax (fixed batch)"] / peak:.0f}% of it')
  cost = 100 * (1 - rates['gan_jax (tfds input)'] / rates['gan_jax (fixed batch)'])
  print(f'input pipeline cost: {cost:.1f}% of the step rate')
  one = 100 * (1 - rates['gan_jax + EMA of G'] / rates['gan_jax (fixed batch)'])
  fused = 100 * (1 - rates[f'+ EMA of G ({fused_n} steps/dispatch)'] / rates[f'gan_jax ({fused_n} steps/dispatch)'])
  print(f'moving average of G (configs/mnist_ema.py) cost: {one:.1f}% of the step rate at one step per '
        f'dispatch, {fused:.1f}% at {fused_n} (the MNIST configs\' train.steps_per_call)')
  if torch_version:
    ratio = rates['gan_jax (fixed batch)'] / rates[f'PyTorch {torch_version} eager']
    print(f'gan_jax / PyTorch eager: {ratio:.2f}x')


if __name__ == '__main__':
  app.run(main)
