"""Steps/s of the conv ("DCGAN") training step: gan_jax against the same model in PyTorch, eager and
under torch.compile, timed as interleaved rounds so that machine noise lands on every side alike.
The conv counterpart of step_speed.py (the paper's MLP step).

  pip install -r benchmarks/requirements-bench.txt     # torch 2.14.1, kept out of requirements.txt
  python benchmarks/conv_speed.py                                  # configs cifar10 and mnist_dcgan
  python benchmarks/conv_speed.py --configs=mnist_dcgan --rounds=5 --steps=10 --warmup=2   # smoke run
  python benchmarks/conv_speed.py --isa=avx2       # every side held to AVX2 (see step_speed.py)
  python benchmarks/conv_speed.py --nocompile      # eager PyTorch only (torch.compile takes minutes)
  python benchmarks/conv_speed.py --platform=gpu   # jax on the GPU, torch on cuda

No dataset is read: every side trains on one fixed random uint8 batch placed on the device once
(the conv step is compute-bound; input_speed.py measures what the input pipeline costs) and
scales it to [-1, 1] on the device at every step, as gan_jax's step does.

Same model and algorithm, from each config (configs/cifar10.py: width 64, 32×32×3; configs/
mnist_dcgan.py: width 32, 28×28×1; both batch 64, default.dcgan_config), s0 and the number of
stride-2 stages n from models.dcgan_layout (32 = 4·2³, 28 = 7·2²):
  G  Linear(z_dim → s0·s0·F), F = width·2^(n-1), as an F×s0×s0 map; then n times GroupNorm
     (group_norm_groups(channels) groups, eps 1e-6, flax's) + ReLU and ConvTranspose2d(4, stride 2,
     padding 1) halving the channels down to width, the last one to the image's C; tanh.
  D  n times Conv2d(4, stride 2, padding 1) + leaky ReLU 0.2 (widths width·2^i), flatten, Linear → 1.
  z ~ N(0, I) (model.noise gaussian, model.noise_dim 100); D's loss 0.5 · (BCE real + BCE fake) (the
  released code's scale, objective.discriminator_loss); G's loss train.g_loss (non-saturating,
  -log D(G(z))); train.update_mode (alternating: k D-updates, each on fresh z, then one G-update on
  fresh z against the updated D) and train.k (1); Adam lr 2e-4, β1 0.5, β2 0.999, eps 1e-8 for both
  (torch.optim.Adam's defaults otherwise); weights initialised as flax's (LeCun truncated normal by
  fan-in, zero biases). Each player's gradient is taken with respect to its own parameters only,
  as jax.grad does (torch.autograd.grad, and no graph through G in D's update). The parameter
  counts of both implementations are printed and must be equal.

Sides, each one waited for after every dispatch, on the same thread count (--threads):
  gan_jax             step.make_p_train_step, one step per dispatch
  gan_jax xN          step.make_p_train_steps, N = train.steps_per_call steps per dispatch (stacked
                      batches), when the config has N > 1 (mnist_dcgan: 10)
  eager               PyTorch eager
  compile             the whole PyTorch step function under torch.compile (inductor, default mode,
                      static shapes: graphs broken at the gradient calls, optimizer steps compiled too)
Each first call (jit or torch.compile compilation) is timed and printed apart (torch.compile's
through inductor's on-disk caches: a second run compiles in seconds, not minutes;
TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 times a cold compile), then --warmup untimed steps per side,
then --rounds rounds of --steps steps per side, every side once per round (each round starting one side later: timing.round_robin). Reported: each side's median steps/s over
rounds and, per pair, the median of the per-round ratios of steps/s with a percentile-bootstrap 95%
interval (benchmarks/timing.py). As in step_speed.py, interleaving evens out noise but not
contention: on busy cores PyTorch's OpenMP threads can slow far more than XLA's (mnist_dcgan on 2
shared cores: PyTorch from ~29 to ~1 step/s, gan_jax from ~16 to ~11), so run it on an idle machine.

Machine facts: the CPU's vector ISA and what each side was held to, each library's measured fp32
matmul peak (best of several 2048² matmuls), XLA's FLOP count of one step and the share of its
library's peak each side reaches (PyTorch is credited with XLA's count: it is the same model).

The last line of each config sums it up for scripts (grep '^conv_speed '), e.g.
  conv_speed config=cifar10 isa=avx512 peak_gflops=... torch_peak_gflops=... gflop_per_step=...
  jax_steps_s=... eager_steps_s=... compile_steps_s=... jax_peak_share=...% ... jax_vs_eager=1.23
  [1.10, 1.30] jax_vs_compile=... compile_vs_eager=... compile_s=... rounds=7 steps=20
(one line). A missing torch, an unknown config or one this benchmark cannot mirror fails at once
with one line (exit 2); a torch.compile that fails prints `torch.compile unavailable: <reason>`
and the run goes on without it.
"""
import copy
import dataclasses
import importlib
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
flags.DEFINE_list('configs', ['cifar10', 'mnist_dcgan'], 'Configs to time, by name in configs/ '
                  '(or path); each must use the dcgan pair.')
timing.define_flags(20, 5, 'Timed rounds (every side once per round).',
                    'Training steps per side per round; rounded up to a multiple of '
                    'train.steps_per_call.',
                    'Untimed steps of each side after its first (compiling) call.')
flags.DEFINE_bool('compile', True, 'Also time the step under torch.compile.')


class BadInput(Exception):
  """A request this benchmark cannot serve: one line, exit 2."""


def load_config(name: str, mirrored: bool = True):
  """The config of configs/<name>.py (a path works too), checked to be one this file mirrors in
  PyTorch (mirrored=False: any config, for timing gan_jax alone)."""
  module = os.path.splitext(os.path.basename(name))[0]
  if importlib.util.find_spec(f'configs.{module}') is None:
    raise BadInput(f'--configs: no configs/{module}.py')
  c = importlib.import_module(f'configs.{module}').get_config()
  m, t = c.model, c.train
  if mirrored and (m.generator, m.discriminator) != ('dcgan', 'dcgan'):
    raise BadInput(f'--configs={module} uses {m.generator}/{m.discriminator}; this benchmark times the dcgan pair')
  if mirrored and (m.num_classes or t.game != 'gan' or c.optim.g.name != 'adam' or c.optim.d.name != 'adam'):
    raise BadInput(f'--configs={module}: only the unconditional paper game with Adam is mirrored in PyTorch')
  # The step itself: what a config adds on top (mnist_dcgan's R1 penalty and average of G) has
  # no PyTorch mirror here, so both sides time the step without it.
  t.r1_gamma, t.ema_decay, t.ema_start_step = 0.0, 0.0, 0
  if c.data.name not in timing.DATA_SHAPES:
    raise BadInput(f'--configs={module}: data.name={c.data.name} has no known image shape ({", ".join(timing.DATA_SHAPES)})')
  return module, c


def tree_size(tree) -> int:
  import jax
  return sum(int(a.size) for a in jax.tree.leaves(tree))


def jax_sides(c, real):
  """({side: one waited dispatch}, {side: steps per dispatch}, (G, D) parameter counts, XLA FLOPs
  per step). The models and state come from train.build_models on an in-memory source holding the
  fixed batch: the same spec and state train.setup builds, without opening a split."""
  import jax
  import numpy as np
  from gan_jax import experiment, parallel, step
  from gan_jax.data import synthetic
  from gan_jax.validate import validate_config
  c.mesh.num_devices, c.mesh.platform = 1, FLAGS.platform
  validate_config(c)
  devices = parallel.pmap_devices(parallel.select_devices(c.mesh))
  spec, state = experiment.build_models(c, synthetic.ArraySource(real))
  k, n = c.train.k, c.train.steps_per_call
  one = np.broadcast_to(real, (1, k) + real.shape)  # [devices, k, b, ...]
  # pmap's own output sharding: a batch placed with it is taken as is, no transfer per step
  place = jax.pmap(lambda x: x, devices=devices)
  batches = {'gan_jax': jax.block_until_ready(place(one))}
  makers = {'gan_jax': step.make_p_train_step}
  if n > 1:
    batches[f'gan_jax x{n}'] = jax.block_until_ready(place(np.broadcast_to(one[:, None], (1, n) + one.shape[1:])))
    makers[f'gan_jax x{n}'] = step.make_p_train_steps
  box = {name: parallel.replicate(state, 1) for name in makers}  # each side trains its own copy

  def dispatch(name):
    fn, batch = makers[name](spec, devices), batches[name]

    def run():
      box[name], metrics = fn(box[name], batch)
      jax.block_until_ready(metrics)
    return run

  fns = {name: dispatch(name) for name in makers}
  per_call = {name: n if name != 'gan_jax' else 1 for name in makers}
  counts = (tree_size(state.g_params), tree_size(state.d_params))
  return fns, per_call, counts, xla_flops(spec, state, one[0])


def xla_flops(spec, state, batch) -> float:
  import jax
  from gan_jax import step
  cost = jax.jit(lambda s, b: step.train_step(spec, s, b)).lower(state, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get('flops', float('nan')))


def torch_models(c, dev: str):
  """(G, D) in PyTorch, the dcgan pair of gan_jax/models/dcgan.py in NCHW."""
  import torch
  from torch import nn
  from gan_jax.models import dcgan_layout, group_norm_groups
  side, _, channels = timing.data_shape(c)
  s0, n = dcgan_layout(side)
  width, z_dim = c.model.g_kwargs.width, c.model.noise_dim
  top = width * 2 ** (n - 1)
  g_widths = [top // 2 ** i for i in range(n)]  # top ... width

  class Generator(nn.Module):
    def __init__(self):
      super().__init__()
      self.dense = nn.Linear(z_dim, s0 * s0 * top)
      self.norms = nn.ModuleList(nn.GroupNorm(group_norm_groups(w), w, eps=1e-6) for w in g_widths)
      self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1)
                               for a, b in zip(g_widths, g_widths[1:] + [channels]))

    def forward(self, z):
      # flax reads the Dense output as s0×s0×F; as F×s0×s0 it is the same layer with its units
      # relabelled, and needs no transpose
      x = self.dense(z).view(-1, top, s0, s0)
      for norm, up in zip(self.norms, self.ups):
        x = up(torch.relu(norm(x)))
      return torch.tanh(x)

  d_widths = [c.model.d_kwargs.width * 2 ** i for i in range(n)]
  layers = []
  for a, b in zip([channels] + d_widths[:-1], d_widths):
    layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
  d = nn.Sequential(*layers, nn.Flatten(), nn.Linear(d_widths[-1] * s0 * s0, 1))
  g = Generator()
  for module in [*g.modules(), *d.modules()]:
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
      lecun_normal_(module)
  return g.to(dev), d.to(dev)


def lecun_normal_(layer):
  """flax's default kernel init: truncated normal of variance 1/fan_in, zero bias. fan_in is
  the weights per output unit (torch's own fan-in of ConvTranspose2d counts outputs instead)."""
  import torch
  out = layer.weight.shape[1] if isinstance(layer, torch.nn.ConvTranspose2d) else layer.weight.shape[0]
  std = (out / layer.weight.numel()) ** 0.5 / .87962566103423978  # flax's truncation correction
  torch.nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
  torch.nn.init.zeros_(layer.bias)


def torch_step(c, g, d, real_u8, dev: str):
  """One waited step of the config's algorithm on (G, D), Adam for each."""
  import torch
  import torch.nn.functional as F
  b, z_dim, k = c.train.batch_size, c.model.noise_dim, c.train.k
  adam = lambda o, params: torch.optim.Adam(params, lr=o.lr, betas=(o.b1, o.b2))
  g_params, d_params = list(g.parameters()), list(d.parameters())
  g_opt, d_opt = adam(c.optim.g, g_params), adam(c.optim.d, d_params)
  # objective.py's losses on logits: BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l)
  d_loss = lambda real, fake: 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
  g_loss = {'non_saturating': lambda fake: F.softplus(-fake).mean(),
            'minimax': lambda fake: -F.softplus(fake).mean()}[c.train.g_loss]
  z = lambda: torch.randn(b, z_dim, device=dev)

  def grads_to(loss, params):
    # the gradient of this player's parameters alone, as jax.grad's argnums: no wasted weight
    # gradients of the other player
    for p, grad in zip(params, torch.autograd.grad(loss, params)):
      p.grad = grad

  def one_step():
    real = real_u8.float() / 127.5 - 1  # data.scale symmetric, on the device, as gan_jax's step
    if c.train.update_mode == 'simultaneous':  # both gradients at the current parameters, one z
      fake = g(z())
      grads_to(d_loss(d(real), d(fake.detach())), d_params)
      grads_to(g_loss(d(fake)), g_params)
      d_opt.step()
      g_opt.step()
    else:
      for _ in range(k):
        with torch.no_grad():
          fake = g(z())
        grads_to(d_loss(d(real), d(fake)), d_params)
        d_opt.step()
      grads_to(g_loss(d(g(z()))), g_params)
      g_opt.step()

  return one_step


def torch_sides(c, real, dev: str):
  """({side: one waited step}, (G, D) parameter counts): eager, and compile unless --nocompile
  (compiled lazily: by its first call). Each trains its own copy of the same initial models."""
  import torch
  torch.set_num_threads(FLAGS.threads)
  torch.manual_seed(c.seed)
  real_u8 = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous().to(dev)  # NHWC → NCHW
  sync = torch.cuda.synchronize if dev == 'cuda' else lambda: None
  g, d = torch_models(c, dev)
  counts = tuple(sum(p.numel() for p in m.parameters()) for m in (g, d))
  copies = {'eager': (g, d)}
  if FLAGS.compile:
    copies['compile'] = tuple(copy.deepcopy(m) for m in (g, d))
  steps = {name: torch_step(c, *models, real_u8, dev) for name, models in copies.items()}
  if 'compile' in steps:
    # Static shapes: the step's shapes never change, and dynamic=None (the default) recompiled
    # mnist_dcgan's step with symbolic sizes that inductor then failed on (torch 2.13.0:
    # "cannot determine truth value of Relational: 64*s48 < 64").
    steps['compile'] = torch.compile(steps['compile'], dynamic=False)

  def waited(fn):
    def run():
      fn()
      sync()
    return run
  return {name: waited(fn) for name, fn in steps.items()}, counts


def first_calls(fns: dict) -> dict:
  """{side: seconds of its first call} (jit or torch.compile compilation included). A failing
  torch.compile is reported in one line and its side dropped from `fns`."""
  seconds = {}
  for side, fn in list(fns.items()):
    if side != 'compile':
      seconds[side] = timing.time_calls(fn, 1)[0]
      continue
    counters = dynamo_counters()
    try:
      seconds[side] = timing.time_calls(fn, 1)[0]
      print(f'torch.compile: {graph_facts(counters)}', flush=True)
    except Exception as e:  # inductor's failures take many forms (no compiler, unsupported op)
      reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
      print(f'torch.compile unavailable: {type(e).__name__}: {reason[:200]}', flush=True)
      del fns[side]
  return seconds


def dynamo_counters():
  """dynamo's statistics, emptied so that they count this config's graphs alone; None where
  this private API is missing."""
  try:
    from torch._dynamo.utils import counters
    counters.clear()
    return counters
  except (ImportError, AttributeError):
    return None


def graph_facts(counters) -> str:
  """How whole the compiled step is (torch.autograd.grad and the optimizer steps break it)."""
  try:
    return f'{counters["stats"]["unique_graphs"]} graphs, {sum(counters["graph_break"].values())} graph breaks'
  except Exception:  # dynamo's private counters: a change in them must not stop the timing
    return 'graph count unknown'


def check_counts(jax_counts, torch_counts):
  def line(i):
    same = '=' if jax_counts[i] == torch_counts[i] else '≠'
    return f'{jax_counts[i]:,} (gan_jax) {same} {torch_counts[i]:,} (PyTorch)'
  print(f'parameters: G {line(0)}, D {line(1)}', flush=True)
  if tuple(jax_counts) != tuple(torch_counts):
    sys.exit('error: the PyTorch models differ from gan_jax\'s (parameter counts above): the comparison is void')


@dataclasses.dataclass
class Pair:
  key: str  # its name in the summary line
  a: str
  b: str


def pairs(names):
  """jax vs each PyTorch side, the fused side likewise, and what compiling buys PyTorch."""
  jax_sides_ = [n for n in names if n.startswith('gan_jax')]
  out = []
  for j in jax_sides_:
    prefix = 'jax' if j == 'gan_jax' else 'fused'
    out += [Pair(f'{prefix}_vs_{t}', j, t) for t in ('eager', 'compile') if t in names]
  return out + ([Pair('compile_vs_eager', 'compile', 'eager')] if 'compile' in names else [])


SUMMARY_NAMES = {'gan_jax': 'jax', 'eager': 'eager', 'compile': 'compile'}


def summary_name(side: str) -> str:
  return SUMMARY_NAMES.get(side, 'fused')


def describe(module: str, c) -> str:
  m, t, o = c.model, c.train, c.optim
  h, w, ch = timing.data_shape(c)
  return (f'{module}: dcgan width {m.g_kwargs.width}, {h}×{w}×{ch}, batch {t.batch_size}, {t.update_mode} '
          f'k={t.k}, {t.g_loss} G loss, z {m.noise} {m.noise_dim}, Adam G {o.g.lr:g} β1 {o.g.b1:g}, '
          f'D {o.d.lr:g} β1 {o.d.b1:g}, steps_per_call {t.steps_per_call}')


def run_config(name: str, dev: str, peaks, isa_tag: str):
  module, c = load_config(name)
  print(f'\n== {describe(module, c)}', flush=True)
  real = timing.random_batch(c)
  t0 = time.perf_counter()
  fns, per_call, jax_counts, flops = jax_sides(c, real)
  torch_fns, torch_counts = torch_sides(c, real, dev)
  check_counts(jax_counts, torch_counts)
  fns.update(torch_fns)
  per_call.update({side: 1 for side in torch_fns})
  firsts = first_calls(fns)
  print(f'{module}: set up and compiled in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  n = c.train.steps_per_call
  steps = -(-FLAGS.steps // n) * n
  calls = {side: max(1, steps // per_call[side]) for side in fns}
  warmup = {side: -(-FLAGS.warmup // per_call[side]) for side in fns}
  print('first call (compilation included): ' + ', '.join(f'{s} {t:.1f} s' for s, t in firsts.items()), flush=True)
  t0 = time.perf_counter()
  rounds = timing.round_robin(fns, calls, FLAGS.rounds, warmup)
  print(f'{module}: timed in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  rates = {side: [steps / r[side][0] for r in rounds] for side in fns}
  report(module, c, rates, steps, flops, peaks, isa_tag, firsts.get('compile'))


def report(module, c, rates, steps, flops, peaks, isa_tag, compile_s):
  jax_pk, torch_pk = peaks
  medians = {side: statistics.median(r) for side, r in rates.items()}
  print(f'{FLAGS.rounds} interleaved rounds ({", ".join(rates)}) of {steps} steps per side after '
        f'>= {FLAGS.warmup} warm-up steps; median per round, bootstrap 95% interval')
  share = lambda side: 100 * flops * medians[side] / (jax_pk if side.startswith('gan_jax') else torch_pk)
  print(f'{"side":<16}{"steps/s":>9}{"peak share":>12}  per round')
  for side, r in rates.items():
    print(f'{side:<16}{medians[side]:>9.2f}{share(side):>11.0f}%  {" ".join(f"{v:.2f}" for v in r)}')
  print(f'{"ratio (A/B)":<20}{"median [95% CI]":<22}per round')
  summary = {}
  for p in pairs(list(rates)):
    ratios = [ra / rb for ra, rb in zip(rates[p.a], rates[p.b])]
    med, lo, hi = timing.median_interval(ratios, FLAGS.bootstrap)
    summary[p.key] = f'{med:.2f} [{lo:.2f}, {hi:.2f}]'
    print(f'{p.key:<20}{summary[p.key]:<22}{" ".join(f"{v:.2f}" for v in ratios)}')
  print(f'XLA FLOPs per step: {flops / 1e9:.2f} GFLOP; peak shares against the fp32 matmul peak of '
        f'each side\'s library (PyTorch credited with XLA\'s count)')
  fields = [f'config={module}', f'isa={isa_tag}', f'peak_gflops={jax_pk / 1e9:.0f}',
            f'torch_peak_gflops={torch_pk / 1e9:.0f}', f'gflop_per_step={flops / 1e9:.2f}']
  fields += [f'{summary_name(s)}_steps_s={medians[s]:.2f}' for s in rates]
  fields += [f'{summary_name(s)}_peak_share={share(s):.0f}%' for s in rates]
  fields += [f'{k}={v}' for k, v in summary.items()]
  if compile_s is not None:
    fields.append(f'compile_s={compile_s:.0f}')
  else:
    fields.append('compile=unavailable' if FLAGS.compile else 'compile=off')
  fields += [f'threads={FLAGS.threads}', f'rounds={FLAGS.rounds}', f'steps={steps}']
  print('conv_speed ' + ' '.join(fields), flush=True)


def main(argv):
  del argv
  timing.limit_isa(FLAGS.isa)
  host_memory_line = timing.set_host_memory(FLAGS.host_memory)
  if importlib.util.find_spec('torch') is None:
    print('error: torch is not installed (the PyTorch baseline): pip install -r benchmarks/requirements-bench.txt',
          file=sys.stderr)
    sys.exit(2)
  from gan_jax import progress
  progress.quiet_library_logs()
  from gan_jax.errors import UserError
  try:
    for name in FLAGS.configs:  # refuse a bad name before minutes of timing the others
      load_config(name)
  except BadInput as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  import jax
  import torch
  dev = 'cuda' if FLAGS.platform == 'gpu' else 'cpu'
  try:
    device = jax.devices(FLAGS.platform)[0] if FLAGS.platform else jax.devices()[0]
  except RuntimeError as e:
    print(f'error: --platform={FLAGS.platform} is not available to jax ({str(e).splitlines()[0]})', file=sys.stderr)
    sys.exit(2)
  if dev == 'cuda' and not torch.cuda.is_available():
    print(f'error: --platform=gpu, but torch {torch.__version__} sees no CUDA device', file=sys.stderr)
    sys.exit(2)
  xla_isa, torch_isa, isa_lines = timing.isa_facts(torch)
  print(f'device: {device.platform} ({device.device_kind}), jax {jax.__version__}, torch {torch.__version__} '
        f'on {dev}; cpu: {timing.cpu_info()}; torch threads {FLAGS.threads}')
  for line in isa_lines + [host_memory_line]:
    print(line)
  torch.set_num_threads(FLAGS.threads)
  peaks = (timing.jax_peak(), timing.torch_peak(dev))
  print(f'fp32 matmul peak ({timing.PEAK_N}², best of {timing.PEAK_REPS}): jax {peaks[0] / 1e9:.0f} GFLOP/s, '
        f'torch {peaks[1] / 1e9:.0f} GFLOP/s', flush=True)
  isa_tag = xla_isa if torch_isa == xla_isa else f'jax:{xla_isa},torch:{torch_isa}'
  try:
    for name in FLAGS.configs:
      run_config(name, dev, peaks, isa_tag)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
