"""Steps/s of the paper's MNIST training step: gan_jax against the same model in plain PyTorch,
timed as interleaved rounds so that machine noise lands on both sides alike.

  pip install -r benchmarks/requirements-bench.txt     # torch 2.14.1, kept out of requirements.txt
  python benchmarks/step_speed.py --manual_dir=../shared/data/mnist
  python benchmarks/step_speed.py --manual_dir=../shared/data/mnist --rounds=5 --steps=20   # smoke run
  python benchmarks/step_speed.py --manual_dir=../shared/data/mnist --isa=avx2  # both sides held to AVX2

Same model and algorithm (configs/mnist_algorithm1.py: maxout D with dropout 0.8/0.5, ReLU/sigmoid
G, batch 100, Algorithm 1 with k = 1, SGD with momentum, D's loss 0.5 * (BCE real + BCE fake) as
the released code, non-saturating G loss), both on the same thread count.

Method. Each comparison A vs B runs as rounds A B A B ... (--rounds rounds of --steps steps per
side, after --warmup untimed steps of each; every dispatch waited for) and reports the median of
the per-round ratios of steps/s with a percentile-bootstrap 95% interval (benchmarks/timing.py,
shared with input_speed.py). Run one after the other, a burst of other work on the machine lands
on one side only and the ratio swings between runs; interleaved, it lands on both. Comparisons:
  jax_vs_torch    gan_jax, one step per dispatch, vs PyTorch eager
  fused_vs_torch  gan_jax, 10 steps per dispatch (the MNIST configs' train.steps_per_call), vs PyTorch
  input_cost      gan_jax fed by its real tfds input pipeline (next(iterator), host -> device every
                  step) vs one batch placed on the device once: 1 - streamed/resident, one step per
                  dispatch (input_speed.py measures it at train.steps_per_call)
  ema_cost        the moving average of G's weights (configs/mnist_ema.py) on vs off, at one and
                  at 10 steps per dispatch
gan_jax's batches are device-resident, as PyTorch's fixed real batch is, except in input_cost.
Interleaving evens out noise but not contention: on cores shared with other jobs PyTorch's OpenMP
threads, which wait for each other at every op, can slow far more than XLA (compare a run with
--threads=1), so ratios taken on a busy machine say little about an idle one.

Machine facts printed with the result: the CPU's vector ISA (/proc/cpuinfo) and what each side was
held to, the measured fp32 matmul peak of each library (best of several large matmuls), XLA's FLOP
count of one step and the share of its library's peak each side reaches (PyTorch is credited with
XLA's count: it is the same model).

ISA control. On an AVX-512 machine, --isa=avx2 holds both sides to AVX2 by setting, before JAX or
torch loads, what each reads once at start (the same as exporting them yourself):
  XLA_FLAGS=--xla_cpu_max_isa=AVX2        XLA's CPU code generation
  ATEN_CPU_CAPABILITY=avx2                PyTorch's own vectorised kernels
  ONEDNN_MAX_CPU_ISA=AVX2                 oneDNN (PyTorch's mkldnn kernels)
  MKL_ENABLE_INSTRUCTIONS=AVX2            MKL (PyTorch's CPU BLAS: nn.Linear's matmuls)
The script prints the limit each side ran under (for ATen, the capability torch reports); the
matmul peaks show whether a limit took effect.

The last line sums up the run for scripts (grep '^step_speed '), e.g.
  step_speed isa=avx512 peak_gflops=... torch_peak_gflops=... gflop_per_step=3.62 jax_peak_share=...%
  torch_peak_share=...% jax_vs_torch=1.43 [1.38, 1.49] fused_vs_torch=... input_cost=0.5% [-1.0, 2.0]
  ema_cost=... ema_cost_fused=... rounds=7 steps=100
(one line). Missing MNIST archives or a missing torch fail at once with one line (exit 2);
--notorch times gan_jax alone.
"""
import dataclasses
import importlib.util
import os
import statistics
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import timing  # noqa: E402

FLAGS = flags.FLAGS
timing.define_flags(100, 30, 'Timed rounds per comparison (A then B each round).',
                    'Training steps per side per round; rounded up to a multiple of 10 (the fused '
                    'side runs 10 per dispatch).',
                    'Untimed steps of each side before a comparison\'s rounds.')
flags.DEFINE_string('manual_dir', None, 'Official MNIST archives (for the real-input timing).')
flags.DEFINE_string('data_dir', None, 'tfds data_dir (prepared data).')
flags.DEFINE_bool('torch', True, 'Also time PyTorch (needs torch installed).')

FUSED_N = 10  # the MNIST configs' train.steps_per_call


def jax_setup():
  """({name: one waited dispatch}, steps per dispatch of each, XLA FLOPs per step)."""
  import jax
  import numpy as np
  from configs import mnist_algorithm1
  from gan_jax import parallel, step, train
  c = mnist_algorithm1.get_config()  # alternating, as the PyTorch baseline
  c.data.manual_dir, c.data.data_dir, c.mesh.num_devices = FLAGS.manual_dir, FLAGS.data_dir, 1
  c.mesh.platform = FLAGS.platform
  exp = train.setup(c)
  devices = parallel.pmap_devices(exp.devices)
  fixed = next(exp.iterator)
  # pmap's own output sharding: a batch placed with it is taken as is, no transfer per step
  place = jax.pmap(lambda x: x, devices=devices)
  one, stacked = jax.block_until_ready(place(fixed)), jax.block_until_ready(place(np.stack([fixed] * FUSED_N, axis=1)))
  ema_spec = dataclasses.replace(exp.spec, ema_decay=0.99998)  # configs/mnist_ema.py's step
  box = {'plain': parallel.replicate(exp.init_state, 1),
         'ema': parallel.replicate(exp.init_state.replace(g_ema=exp.init_state.g_params), 1)}

  def dispatch(fn, key, batches):
    def run():
      box[key], m = fn(box[key], batches())
      jax.block_until_ready(m)
    return run

  p_step, p_steps = step.make_p_train_step(exp.spec, devices), step.make_p_train_steps(exp.spec, devices)
  e_step, e_steps = step.make_p_train_step(ema_spec, devices), step.make_p_train_steps(ema_spec, devices)
  fns = {'resident': dispatch(p_step, 'plain', lambda: one),
         'streamed': dispatch(p_step, 'plain', lambda: next(exp.iterator)),
         'fused': dispatch(p_steps, 'plain', lambda: stacked),
         'ema': dispatch(e_step, 'ema', lambda: one),
         'ema_fused': dispatch(e_steps, 'ema', lambda: stacked)}
  per_call = {name: FUSED_N if name.endswith('fused') else 1 for name in fns}
  per_call['torch'] = 1
  return fns, per_call, xla_flops(exp, fixed)


def xla_flops(exp, batch) -> float:
  import jax
  from gan_jax import step
  lowered = jax.jit(lambda s, b: step.train_step(exp.spec, s, b)).lower(exp.init_state, batch[0])
  cost = lowered.compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get('flops', float('nan')))


def torch_setup(dev: str):
  """One waited step of Algorithm 1 (k = 1) on the same model in PyTorch eager."""
  import torch
  from torch import nn
  torch.set_num_threads(FLAGS.threads)

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

  return one_step


@dataclasses.dataclass
class Comparison:
  key: str        # its name in the summary line
  label: str
  a: str          # names in the step-function dict
  b: str
  cost: bool      # report 100 * (1 - A/B) %, the cost of what A adds, instead of A/B
  rates_a: list = dataclasses.field(default_factory=list)
  rates_b: list = dataclasses.field(default_factory=list)

  def values(self):
    ratios = [ra / rb for ra, rb in zip(self.rates_a, self.rates_b)]
    return [100 * (1 - r) for r in ratios] if self.cost else ratios


def comparisons(with_torch: bool):
  out = [Comparison('jax_vs_torch', 'gan_jax 1 step/dispatch vs PyTorch eager', 'resident', 'torch', False),
         Comparison('fused_vs_torch', f'gan_jax {FUSED_N} steps/dispatch vs PyTorch eager', 'fused', 'torch', False)]
  out = out if with_torch else []
  return out + [Comparison('input_cost', 'tfds input vs device-resident batch (1/dispatch)', 'streamed', 'resident', True),
                Comparison('ema_cost', 'EMA of G on vs off (1 step/dispatch)', 'ema', 'resident', True),
                Comparison('ema_cost_fused', f'EMA of G on vs off ({FUSED_N} steps/dispatch)', 'ema_fused', 'fused', True)]


def run(comp: Comparison, fns, per_call, steps: int):
  calls = lambda name, n: max(1, n // per_call[name])
  rounds = timing.interleaved(fns[comp.a], fns[comp.b], calls(comp.a, steps), calls(comp.b, steps), FLAGS.rounds,
                              calls(comp.a, FLAGS.warmup), calls(comp.b, FLAGS.warmup))
  comp.rates_a = [steps / a[0] for a, _ in rounds]
  comp.rates_b = [steps / b[0] for _, b in rounds]


def first_rate(comps, name: str) -> float:
  """Median steps/s of `name` in the first comparison that timed it."""
  c = next(c for c in comps if name in (c.a, c.b))
  return statistics.median(c.rates_a if c.a == name else c.rates_b)


def fmt(comp: Comparison, med, lo, hi) -> str:
  return f'{med:.1f}% [{lo:.1f}, {hi:.1f}]' if comp.cost else f'{med:.2f} [{lo:.2f}, {hi:.2f}]'


def report(comps, steps, flops, peaks, isa, torch_version, host_memory_line):
  import jax
  device = jax.devices()[0]
  xla_isa, torch_isa, isa_lines = isa
  print(f'\ndevice: {device.platform} ({device.device_kind}), jax {jax.__version__}'
        f'{", torch " + torch_version if torch_version else ""}; cpu: {timing.cpu_info()}; torch threads {FLAGS.threads}')
  for line in isa_lines + [host_memory_line]:
    print(line)
  print(f'{FLAGS.rounds} interleaved rounds (A then B) of {steps} steps per side after {FLAGS.warmup} warm-up '
        f'steps; median per-round value, bootstrap 95% interval\n')
  print(f'{"comparison":<58}{"A steps/s":>10}{"B steps/s":>10}  {"median [95% CI]":<22}per round')
  summary = {}
  for c in comps:
    values = c.values()
    med, lo, hi = timing.median_interval(values, FLAGS.bootstrap)
    summary[c.key] = fmt(c, med, lo, hi)
    per_round = ' '.join(f'{v:.1f}' if c.cost else f'{v:.2f}' for v in values)
    label = c.label + (' (cost %)' if c.cost else ' (A/B)')
    print(f'{label:<58}{statistics.median(c.rates_a):>10.1f}{statistics.median(c.rates_b):>10.1f}  '
          f'{summary[c.key]:<22}{per_round}')
  jax_pk, torch_pk = peaks
  share = lambda name, peak: 100 * flops * first_rate(comps, name) / peak
  print(f'\nXLA FLOPs per step: {flops / 1e9:.2f} GFLOP. Measured fp32 matmul peak ({timing.PEAK_N}², best of '
        f'{timing.PEAK_REPS}): jax {jax_pk / 1e9:.0f} GFLOP/s' + (f', torch {torch_pk / 1e9:.0f} GFLOP/s' if torch_pk else ''))
  print(f'share of its library\'s peak: gan_jax {share("resident", jax_pk):.0f}% (1 step/dispatch), '
        f'{share("fused", jax_pk):.0f}% ({FUSED_N}/dispatch)' +
        (f'; PyTorch {share("torch", torch_pk):.0f}% (credited with XLA\'s FLOP count)' if torch_pk else ''))
  isa_tag = xla_isa if torch_isa in (None, xla_isa) else f'jax:{xla_isa},torch:{torch_isa}'
  fields = [f'isa={isa_tag}', f'peak_gflops={jax_pk / 1e9:.0f}']
  fields += [f'torch_peak_gflops={torch_pk / 1e9:.0f}'] if torch_pk else []
  fields += [f'gflop_per_step={flops / 1e9:.2f}', f'jax_peak_share={share("resident", jax_pk):.0f}%']
  fields += [f'torch_peak_share={share("torch", torch_pk):.0f}%'] if torch_pk else []
  fields += [f'{k}={v}' for k, v in summary.items()]
  fields += [f'rounds={FLAGS.rounds}', f'steps={steps}']
  print('\nstep_speed ' + ' '.join(fields))


def main(argv):
  del argv
  timing.limit_isa(FLAGS.isa)
  host_memory_line = timing.set_host_memory(FLAGS.host_memory)
  if FLAGS.torch and importlib.util.find_spec('torch') is None:
    print('error: torch is not installed (the PyTorch baseline): pip install -r benchmarks/requirements-bench.txt, '
          'or pass --notorch to time gan_jax alone', file=sys.stderr)
    sys.exit(2)
  from gan_jax import progress
  progress.quiet_library_logs()  # before tfds is imported: it warns at import
  from gan_jax.errors import UserError
  try:
    fns, per_call, flops = jax_setup()
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  torch_mod, torch_version, dev = None, None, 'cuda' if FLAGS.platform == 'gpu' else 'cpu'
  if FLAGS.torch:
    import torch as torch_mod
    torch_version = torch_mod.__version__
    fns['torch'] = torch_setup(dev)
  steps = -(-FLAGS.steps // FUSED_N) * FUSED_N
  comps = comparisons(FLAGS.torch)
  for c in comps:
    t0 = time.perf_counter()
    run(c, fns, per_call, steps)
    print(f'{c.key}: {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  peaks = (timing.jax_peak(), timing.torch_peak(dev) if FLAGS.torch else None)
  report(comps, steps, flops, peaks, timing.isa_facts(torch_mod), torch_version, host_memory_line)


if __name__ == '__main__':
  app.run(main)
