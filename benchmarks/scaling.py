"""How the cost of the paper's MNIST training step grows with the batch, the device count and k:
steps/s, examples/s, XLA's FLOP rate and peak host memory per configuration.

  python benchmarks/scaling.py                                       # all groups, memory too
  python benchmarks/scaling.py --out=benchmarks/results/scaling.md   # also write the tables
  python benchmarks/scaling.py --groups=k --nomemory                 # one group, no child processes
  python benchmarks/scaling.py --groups=batch --batch_sizes=50,100 --rounds=5 --steps=10 --warmup=10  # smoke run

The step is configs/mnist_algorithm1.py's (maxout D, MLP G, Algorithm 1, SGD with momentum) as
train.py runs it: step.make_p_train_steps, train.steps_per_call (10) steps per dispatch, the state
replicated and donated, gradients pmean'd. No data is read: the models need only the example shape,
the split's length (the optimizer schedules count epochs) and its pixel mean (G's output bias), so a
stand-in supplies those, and the step eats one random uint8 batch placed on the devices once
([devices, steps_per_call, k, per_device_batch, 28, 28, 1], the layout the input pipeline makes).
The step does the same work on any pixels.

Groups; the baseline of each is the paper's setting, batch 100 on 1 device with k = 1:
  batch    global batch 25, 50, 100, 200, 500, 1000; 1 device, k = 1
  devices  1, 2, 4 simulated CPU devices, data parallel (pmap). Weak scaling: 100 examples per
           device, so the global batch is 100, 200, 400
  k        k = 1, 2, 5 D-updates (each on its own minibatch) per G-update; batch 100, 1 device
Simulated devices come from XLA_FLAGS=--xla_force_host_platform_device_count=N, set before JAX
loads (appended to any XLA_FLAGS given: XLA takes the last), with JAX_PLATFORMS=cpu. They share
this host's cores, so they show what partitioning the step costs, not what more hardware buys.

Method. The configurations of one group live in one process (the devices group pmaps over the
first 1, 2 or 4 of the simulated devices): each is compiled once, ahead of time (every timed call
reuses that executable), then runs --warmup untimed steps, then --rounds rounds in which every
configuration runs --steps steps (whole dispatches, each waited for), round-robin, each round
starting one configuration later so that none always follows the same neighbour. Drift of the
machine (other jobs, frequency) then lands on all configurations alike. Per configuration: the
median steps/s over rounds with a percentile-bootstrap 95% interval, and the median of the
per-round ratios to the baseline, with its interval (benchmarks/timing.py).

"Linear" is one model in every group: time per step proportional to XLA's FLOP count per step
(summed over devices), so the linear ratio is FLOPs(baseline) / FLOPs(config) and GFLOP/s stays at
the baseline's. In the batch group that is time proportional to the batch (to within the fixed
cost of the parameter updates); in the k group it is k·D-update + G-update with XLA's own costs of
each; in the devices group it is 1/n, since n simulated devices share the same cores (on n real
devices ideal weak scaling would keep the ratio at 1). A ratio above linear means the larger
configuration used the cores better (less per-dispatch overhead, fuller matmuls); below, worse.
FLOPs per step are XLA's cost analysis of one D-update and one G-update (jit of step.d_update and
step.g_update on one device's share), combined as n·(k·D + G): the cost analysis of the compiled
dispatch counts a lax.scan's body once, whatever its length, so it cannot count k or the steps of a
dispatch (checked: 3.64 GFLOP for k = 1, 2 and 5 alike). The sum leaves out the step's own small
work (pixel scaling, keys, metrics): 0.4% of the whole step's count at k = 1. CPU/wall is the process's CPU seconds per wall second while timed: how many cores the
configuration kept busy.

Peak memory: each configuration is also run alone in a child process (the script re-invoked with
--memory_child, simulating only the devices it uses) that compiles and runs two dispatches; its
peak RSS comes from os.wait4. "(+N)" is the peak above the same child's high-water mark after
importing JAX and starting its devices, i.e. what the step and its compilation added. Children run
one at a time, before the timing and before the parent loads JAX: Linux carries the high-water mark
of the process a child was forked from over exec into the child's ru_maxrss, so a parent holding
the compiled steps would put its own peak into every child's.
"""
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import timing  # noqa: E402

FLAGS = flags.FLAGS
GROUPS = ('batch', 'devices', 'k')
flags.DEFINE_list('groups', list(GROUPS), f'Groups to time, of {", ".join(GROUPS)}.')
flags.DEFINE_list('batch_sizes', ['25', '50', '100', '200', '500', '1000'], 'Global batches of the batch group '
                  '(the baseline, 100, is always added).')
flags.DEFINE_list('device_counts', ['1', '2', '4'], 'Simulated CPU devices of the devices group (1 is always added).')
flags.DEFINE_list('ks', ['1', '2', '5'], 'D-updates per G-update of the k group (1 is always added).')
flags.DEFINE_integer('rounds', 7, 'Timed rounds (at least 5); each runs every configuration of the group once.')
flags.DEFINE_integer('steps', 20, 'Training steps per configuration per round; rounded up to a multiple of '
                     '--steps_per_call.')
flags.DEFINE_integer('warmup', 10, 'Untimed steps of each configuration after compiling; rounded up to a '
                     'multiple of --steps_per_call.')
flags.DEFINE_integer('steps_per_call', None, 'Steps per dispatch; default: the config\'s train.steps_per_call '
                     '(10), as train.py runs it.')
flags.DEFINE_bool('memory', True, 'Also measure each configuration\'s peak RSS in a child process.')
flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the 95% intervals.')
flags.DEFINE_integer('seed', 0, 'Seed of the random batch (and, through the config, of the parameters).')
flags.DEFINE_string('out', None, 'Also write the tables (markdown) to this file.')
flags.DEFINE_string('memory_child', None, 'Internal: run the one configuration GROUP:VALUE for the parent\'s '
                    'peak-RSS measurement and print its pre-step high-water mark.')

MNIST_SHAPE = (28, 28, 1)
MNIST_TRAIN = 50_000  # train[:50000]: what the optimizer schedules count epochs of
MNIST_MEAN = 0.1307   # MNIST's mean pixel in [0, 1], for G's output bias
BASE_BATCH, BASE_DEVICES, BASE_K = 100, 1, 1  # the paper's setting; 100 examples per device when weak scaling
MEMORY_CALLS = 2  # dispatches a memory child runs: the second one reuses what the first allocated


@dataclasses.dataclass(frozen=True)
class Setup:
  """One configuration of one group."""
  group: str
  value: int

  @property
  def devices(self) -> int:
    return self.value if self.group == 'devices' else BASE_DEVICES

  @property
  def batch(self) -> int:
    """The global batch: in the devices group, BASE_BATCH per device."""
    return {'batch': self.value, 'devices': BASE_BATCH * self.value}.get(self.group, BASE_BATCH)

  @property
  def k(self) -> int:
    return self.value if self.group == 'k' else BASE_K

  @property
  def baseline(self) -> bool:
    return self.value == {'batch': BASE_BATCH, 'devices': BASE_DEVICES, 'k': BASE_K}[self.group]

  @property
  def key(self) -> str:
    return f'{self.group}:{self.value}'

  @property
  def label(self) -> str:
    return {'batch': f'batch {self.value}', 'devices': f'{self.value} device' + 's' * (self.value > 1),
            'k': f'k={self.value}'}[self.group]


def fail(msg: str):
  print(f'error: {msg}', file=sys.stderr)
  sys.exit(2)


def positive_ints(name: str, base: int) -> list:
  """The values of list flag `name`, sorted, with the group's baseline added."""
  try:
    values = {int(v) for v in getattr(FLAGS, name)}
  except ValueError:
    fail(f'--{name}={",".join(getattr(FLAGS, name))} must be whole numbers, e.g. --{name}=1,2,4.')
  if min(values, default=1) < 1:
    fail(f'--{name} values must be >= 1.')
  return sorted(values | {base})


def group_setups() -> dict:
  """{group: [Setup]} for the groups asked for."""
  unknown = sorted(set(FLAGS.groups) - set(GROUPS))
  if unknown or not FLAGS.groups:
    fail(f'--groups={",".join(FLAGS.groups)}: choose from {",".join(GROUPS)}.')
  values = {'batch': positive_ints('batch_sizes', BASE_BATCH), 'devices': positive_ints('device_counts', BASE_DEVICES),
            'k': positive_ints('ks', BASE_K)}
  return {g: [Setup(g, v) for v in values[g]] for g in GROUPS if g in FLAGS.groups}


def parse_child(key: str) -> Setup:
  group, _, value = key.partition(':')
  if group not in GROUPS or not value.isdigit() or int(value) < 1:
    fail(f'--memory_child={key} must be GROUP:VALUE with GROUP one of {",".join(GROUPS)}.')
  return Setup(group, int(value))


def simulate_devices(n: int):
  """XLA reads these once, when JAX starts its CPU backend: set them before JAX loads."""
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + f' --xla_force_host_platform_device_count={n}').strip()
  os.environ['JAX_PLATFORMS'] = 'cpu'


class StandIn:
  """What the models take from the training split, without the split: the example shape, its
  length (the optimizer schedules count epochs) and its mean pixel (G's output bias)."""
  labels = None
  shape = MNIST_SHAPE

  def __len__(self):
    return MNIST_TRAIN

  def mean(self):
    import numpy as np
    return np.full(self.shape, MNIST_MEAN, np.float32)


def steps_per_call() -> int:
  from configs import mnist_algorithm1
  return FLAGS.steps_per_call or mnist_algorithm1.get_config().train.steps_per_call


def build(s: Setup, per_call: int, count_flops: bool = True):
  """(one waited dispatch of `per_call` steps, XLA FLOPs per step summed over devices, or None
  without `count_flops`: its compilations would add to a memory child's peak)."""
  import jax
  import numpy as np
  from configs import mnist_algorithm1
  from gan_jax import experiment, parallel, step
  from gan_jax.validate import validate_config
  c = mnist_algorithm1.get_config()
  c.seed, c.train.batch_size, c.train.k, c.train.steps_per_call = FLAGS.seed, s.batch, s.k, per_call
  c.mesh.platform, c.mesh.num_devices = 'cpu', s.devices
  validate_config(c)
  devices = parallel.select_devices(c.mesh)
  spec, state = experiment.build_models(c, StandIn())
  per_device = s.batch // s.devices
  rng = np.random.default_rng(FLAGS.seed)
  batch = rng.integers(0, 256, (s.devices, per_call, s.k, per_device) + MNIST_SHAPE, dtype=np.uint8)
  # pmap's own output sharding: arrays placed with it are taken as they are, no transfer per call
  place = jax.pmap(lambda x: x, devices=parallel.pmap_devices(devices))
  batch = jax.block_until_ready(place(batch))
  box = [jax.block_until_ready(place(parallel.replicate(state, s.devices)))]
  p_steps = step.make_p_train_steps(spec, parallel.pmap_devices(devices))
  compiled = p_steps.lower(box[0], batch).compile()  # the one compilation; calls reuse it

  def dispatch():
    box[0], metrics = compiled(box[0], batch)  # the state is donated: keep only the new one
    jax.block_until_ready(metrics)
  return dispatch, (s.devices * step_flops(spec, state, per_device, s.k) if count_flops else None)


def flops_of(fn, *args) -> float:
  import jax
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get('flops', float('nan')))


def step_flops(spec, state, per_device: int, k: int) -> float:
  """XLA's FLOPs of one device's step: k D-updates and one G-update on per_device examples."""
  import jax
  import jax.numpy as jnp
  from gan_jax import step
  real = {'image': jnp.zeros((per_device,) + MNIST_SHAPE, jnp.float32)}
  key = jax.random.PRNGKey(0)
  d = flops_of(lambda st, r, key: step.d_update(spec, st, r, key), state, real, key)
  g = flops_of(lambda st, key: step.g_update(spec, st, key, per_device), state, key)
  return k * d + g


@dataclasses.dataclass
class Result:
  setup: Setup
  flops: float                               # per step, all devices
  rates: list                                # steps/s per round
  cpu_share: float = float('nan')            # process CPU s per wall s over the rounds
  peak_mb: float = None
  added_mb: float = None


def time_group(setups, per_call: int, steps: int, warmup: int) -> list:
  built = [build(s, per_call) for s in setups]
  fns = dict(enumerate(fn for fn, _ in built))
  rounds = timing.round_robin(fns, dict.fromkeys(fns, steps // per_call), FLAGS.rounds,
                              dict.fromkeys(fns, warmup // per_call))
  rounds = [[r[i] for i in fns] for r in rounds]
  results = []
  for i, (s, (_, flops)) in enumerate(zip(setups, built)):
    walls, cpus = [r[i][0] for r in rounds], [r[i][1] for r in rounds]
    results.append(Result(s, flops, [steps / w for w in walls], sum(cpus) / sum(walls)))
  return results


def hwm_mb() -> float:
  """This process's peak RSS so far (VmHWM), MB."""
  with open('/proc/self/status') as f:
    return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024


def run_child(s: Setup, per_call: int):
  """The configuration alone in a child process: compile it and run MEMORY_CALLS dispatches."""
  import jax
  jax.devices()  # the backend and its devices, before anything of the step
  print(f'hwm_before_step_mb={hwm_mb():.1f}', flush=True)
  dispatch, _ = build(s, per_call, count_flops=False)
  timing.time_calls(dispatch, MEMORY_CALLS)


def peak_rss(s: Setup, per_call: int):
  """(peak RSS MB of a child running `s` alone, its high-water mark before the step MB)."""
  cmd = [sys.executable, os.path.abspath(__file__), f'--memory_child={s.key}', f'--steps_per_call={per_call}',
         f'--seed={FLAGS.seed}']
  with tempfile.TemporaryFile('w+') as out:
    child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped above: keep Popen from waiting
    out.seek(0)
    text = out.read()
  before = re.search(r'^hwm_before_step_mb=([\d.]+)$', text, re.M)
  if child.returncode or not before:
    tail = text.strip().splitlines()[-1:] or ['no output']
    fail(f'the memory child for {s.label} failed (exit {child.returncode}): {tail[0]}')
  return usage.ru_maxrss / 1024, float(before.group(1))  # Linux: ru_maxrss in KiB


def same_step(s: Setup):
  """What makes two configurations the same step: each group's baseline is the paper's."""
  return s.batch, s.devices, s.k


def peak_rss_all(setups, per_call: int) -> dict:
  """{same_step: (peak MB, MB before the step)}, one child at a time."""
  t0, out = time.perf_counter(), {}
  for s in setups:
    if same_step(s) not in out:
      out[same_step(s)] = peak_rss(s, per_call)
  print(f'memory: {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  return out


def linear_model(group: str) -> str:
  return {'batch': 'time per step ∝ FLOPs ∝ batch (plus the fixed parameter-update cost)',
          'devices': 'time per step ∝ total FLOPs = n × one device\'s: the simulated devices share the cores '
                     '(on n real devices, ideal weak scaling is a ratio of 1.00)',
          'k': 'time per step ∝ FLOPs = k·D-update + G-update (XLA\'s counts of each)'}[group]


def table(group: str, results: list) -> str:
  base = next(r for r in results if r.setup.baseline)
  memory = any(r.peak_mb is not None for r in results)
  head = ['config', 'global batch', 'steps/s [95% CI]', 'examples/s', 'ratio to baseline [95% CI]', 'linear',
          'GFLOP/step', 'GFLOP/s', 'CPU/wall'] + (['peak RSS MB'] if memory else [])
  lines = [f'### {group}: {linear_model(group)}', '', '| ' + ' | '.join(head) + ' |',
           '|' + '|'.join(['---'] + ['---:'] * (len(head) - 1)) + '|']
  for r in results:
    med, lo, hi = timing.median_interval(r.rates, FLAGS.bootstrap)
    ratio = timing.median_interval([a / b for a, b in zip(r.rates, base.rates)], FLAGS.bootstrap)
    row = [r.setup.label + (' (baseline)' if r.setup.baseline else ''), str(r.setup.batch),
           f'{med:.2f} [{lo:.2f}, {hi:.2f}]', f'{med * r.setup.batch:,.0f}',
           f'{ratio[0]:.3f} [{ratio[1]:.3f}, {ratio[2]:.3f}]', f'{base.flops / r.flops:.3f}',
           f'{r.flops / 1e9:.3f}', f'{r.flops * med / 1e9:.1f}', f'{r.cpu_share:.2f}']
    if memory:
      row.append(f'{r.peak_mb:.0f} (+{r.added_mb:.0f})' if r.peak_mb is not None else '-')
    lines.append('| ' + ' | '.join(row) + ' |')
  return '\n'.join(lines)


def header(per_call: int, steps: int, warmup: int, devices: int) -> str:
  import jax
  return '\n'.join([
      '## Scaling of the MNIST training step (configs/mnist_algorithm1.py)', '',
      f'cpu: {timing.cpu_info()}; jax {jax.__version__}; XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r} '
      f'({devices} simulated CPU device(s) in the timing process)',
      f'{FLAGS.rounds} interleaved rounds of {steps} steps per configuration ({per_call} per dispatch, '
      f'each waited for) after {warmup} untimed steps; random device-resident uint8 batch; median over rounds '
      f'with a bootstrap 95% interval ({FLAGS.bootstrap} resamples). Ratio: the median of per-round ratios to '
      f'the group\'s baseline; linear: FLOPs(baseline) / FLOPs(config).' +
      (f' Peak RSS: a child process per configuration (compile + {MEMORY_CALLS} dispatches); (+N): above its '
       'mark after starting JAX.' if FLAGS.memory else '')])


def main(argv):
  if len(argv) > 1:
    fail(f'unexpected arguments: {" ".join(argv[1:])}')
  from gan_jax.errors import UserError
  if FLAGS.memory_child:
    s = parse_child(FLAGS.memory_child)
    simulate_devices(s.devices)
    try:
      run_child(s, steps_per_call())
    except UserError as e:
      fail(str(e))
    return
  for name, least in (('rounds', 5), ('steps', 1), ('warmup', 1), ('steps_per_call', 1), ('bootstrap', 100)):
    if getattr(FLAGS, name) is not None and getattr(FLAGS, name) < least:
      fail(f'--{name}={getattr(FLAGS, name)} must be at least {least}.')
  groups = group_setups()
  if FLAGS.out and not os.access(os.path.dirname(os.path.abspath(FLAGS.out)), os.W_OK):
    fail(f'--out={FLAGS.out}: its directory does not exist or is not writable.')
  per_call = steps_per_call()
  steps, warmup = (-(-n // per_call) * per_call for n in (FLAGS.steps, FLAGS.warmup))
  # Before JAX loads here: a child's ru_maxrss also counts the memory of the process it was
  # forked from (Linux carries the pre-exec high-water mark over exec), so this one must be small.
  memory = peak_rss_all([s for setups in groups.values() for s in setups], per_call) if FLAGS.memory else {}
  devices = max(s.devices for setups in groups.values() for s in setups)
  simulate_devices(devices)
  from gan_jax import progress
  progress.quiet_library_logs()
  results = {}
  try:
    for group, setups in groups.items():
      t0 = time.perf_counter()
      results[group] = time_group(setups, per_call, steps, warmup)
      print(f'{group}: timed in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
  except UserError as e:
    fail(str(e))
  for r in (r for rs in results.values() for r in rs):
    if memory:
      r.peak_mb, before = memory[same_step(r.setup)]
      r.added_mb = r.peak_mb - before
  text = '\n\n'.join([header(per_call, steps, warmup, devices)] + [table(g, rs) for g, rs in results.items()]) + '\n'
  print('\n' + text)
  if FLAGS.out:
    try:
      with open(FLAGS.out, 'w') as f:
        f.write(text)
    except OSError as e:
      fail(f'--out={FLAGS.out}: cannot write ({e.strerror}).')


if __name__ == '__main__':
  app.run(main)
