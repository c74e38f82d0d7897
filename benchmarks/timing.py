"""Timing pieces shared by the benchmarks: interleaved rounds, a bootstrap interval of their median
ratio, and the machine facts a number is only comparable under.

Two things timed one after the other put every burst of machine noise (other jobs, page cache,
frequency changes) on one side; timed as rounds A B A B ..., drift lands on both alike, and the
spread of the per-round ratios shows how far one run can be trusted.
"""
import os
import re
import time

BOOTSTRAP_SEED = 0  # the interval is the same number on every run of the same rounds


def cpu_flags() -> set:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        if key.strip() in ('flags', 'Features'):  # x86, arm
          return set(value.split())
  except OSError:
    pass
  return set()


def cpu_isa() -> str:
  """The widest vector ISA the CPU has: what XLA and PyTorch pick unless limited."""
  flags_ = cpu_flags()
  return next((name for name in ('avx512f', 'avx2', 'avx', 'sse4_2', 'asimd') if name in flags_), 'unknown').replace('avx512f', 'avx512')


def cpu_info() -> str:
  """Model name, vector ISA and core count: a ratio is only comparable on like machines."""
  model = '?'
  try:
    with open('/proc/cpuinfo') as f:
      model = next((line.partition(':')[2].strip() for line in f if line.startswith('model name')), '?')
  except OSError:
    pass
  bf16 = ' + avx512_bf16' if 'avx512_bf16' in cpu_flags() else ''
  return f'{model}, {cpu_isa()}{bf16}, {os.cpu_count()} cores'


def xla_max_isa():
  """What XLA_FLAGS holds XLA's CPU code generation to (--xla_cpu_max_isa=...), or None."""
  found = re.findall(r'--xla_cpu_max_isa=(\S+)', os.environ.get('XLA_FLAGS', ''))
  return found[-1] if found else None  # XLA takes the last of a repeated flag


def time_calls(fn, calls: int):
  """(wall seconds, process CPU seconds): CPU time counts every thread of this process (XLA's,
  grain's prefetch thread), so host cost shows even when other jobs share the cores."""
  t0, c0 = time.perf_counter(), time.process_time()
  for _ in range(calls):
    fn()
  return time.perf_counter() - t0, time.process_time() - c0


def interleaved(a, b, calls_a: int, calls_b: int, rounds: int, warmup_a: int = 1, warmup_b: int = 1):
  """[((wall, cpu) of a, (wall, cpu) of b)] per round, timed a b a b ...; a and b each run one
  call and wait for it. The warm-up calls (compilation, first transfers, allocator growth) are
  untimed."""
  time_calls(a, warmup_a)
  time_calls(b, warmup_b)
  return [(time_calls(a, calls_a), time_calls(b, calls_b)) for _ in range(rounds)]


def median_interval(ratios, resamples: int):
  """The median and a percentile-bootstrap 95% interval of it."""
  import numpy as np
  r = np.asarray(ratios)
  rng = np.random.default_rng(BOOTSTRAP_SEED)
  medians = np.median(r[rng.integers(0, len(r), (resamples, len(r)))], axis=1)
  return float(np.median(r)), float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def round_robin(fns: dict, calls: dict, rounds: int, warmup: dict):
  """[{name: (wall, cpu)}] per round: `interleaved` for any number of sides. Round r starts at side
  r mod n, so that no side always follows the same one; the warm-up calls of each are untimed."""
  for name, fn in fns.items():
    time_calls(fn, warmup[name])
  names, out = list(fns), []
  for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    out.append({name: time_calls(fns[name], calls[name]) for name in order})
  return out


# The image shape of each dataset the step benchmarks train on: they read no data (one fixed batch),
# and the library learns shapes only from an opened split.
DATA_SHAPES = {'cifar10': (32, 32, 3), 'mnist': (28, 28, 1), 'fashion_mnist': (28, 28, 1)}


def data_shape(c):
  """(height, width, channels) of config c's images."""
  h, w, ch = DATA_SHAPES[c.data.name]
  side = c.data.get('image_size')
  return (side, side, ch) if side else (h, w, ch)


class SplitShape:
  """What build_models reads of a split (its example shape, length and labels), without data:
  enough for a spec and an initial state."""
  labels = None

  def __init__(self, shape):
    self.shape = shape

  def __len__(self):
    return 50_000


def random_batch(c):
  """One fixed uint8 batch of config c's shape, as the data pipeline stores images."""
  import numpy as np
  return np.random.default_rng(c.seed).integers(0, 256, (c.train.batch_size,) + data_shape(c), np.uint8)


# What each library reads once, when it loads, to limit its vector ISA: set before either imports.
AVX2_ENV = {'XLA_FLAGS': '--xla_cpu_max_isa=AVX2', 'ATEN_CPU_CAPABILITY': 'avx2',
            'ONEDNN_MAX_CPU_ISA': 'AVX2', 'MKL_ENABLE_INSTRUCTIONS': 'AVX2'}
PEAK_N, PEAK_REPS = 2048, 10


def limit_isa(isa: str):
  """'avx2': hold XLA and PyTorch to AVX2 (before either is imported); 'native': leave them."""
  if isa != 'avx2':
    return
  for key, value in AVX2_ENV.items():
    os.environ[key] = (os.environ.get(key, '') + ' ' + value).strip() if key == 'XLA_FLAGS' else value


def set_host_memory(way: str) -> str:
  """'kept': glibc keeps freed host memory for reuse (gan_jax/host_memory.py), as launch.py does;
  'returned': glibc's default. Both sides of a comparison share the process, so both get it. Call
  before JAX's backend starts. Returns a line to print."""
  from gan_jax import host_memory
  if way == 'kept' and host_memory.keep_freed_memory():
    return 'host memory: freed memory kept for reuse (gan_jax/host_memory.py, as launch.py), both sides'
  return 'host memory: the C library\'s default (glibc: large blocks mmapped and returned), both sides'


def isa_facts(torch_mod=None):
  """(XLA's ISA, torch's ATen ISA or None, lines to print): what each side was held to."""
  native = cpu_isa()
  xla = xla_max_isa()
  lines = [f'XLA: {"held to " + xla + " (XLA_FLAGS --xla_cpu_max_isa)" if xla else "not limited (the CPU has " + native + ")"}']
  xla = (xla or native).lower()
  if torch_mod is None:
    return xla, None, lines
  aten = torch_mod.backends.cpu.get_cpu_capability().lower()
  env = lambda k: os.environ.get(k) or 'unset (native)'
  lines.append(f'PyTorch: ATen kernels {aten} (ATEN_CPU_CAPABILITY {env("ATEN_CPU_CAPABILITY")}), '
               f'oneDNN ONEDNN_MAX_CPU_ISA {env("ONEDNN_MAX_CPU_ISA")}, MKL MKL_ENABLE_INSTRUCTIONS '
               f'{env("MKL_ENABLE_INSTRUCTIONS")}')
  return xla, aten, lines


def best_rate(fn, flop: float, reps: int) -> float:
  """FLOP/s of the fastest of `reps` calls: the least disturbed one on a shared machine."""
  fn()
  return flop / min(time_calls(fn, 1)[0] for _ in range(reps))


def jax_peak() -> float:
  """Measured fp32 FLOP/s of a large matmul: this machine's practical peak for XLA."""
  import jax
  import jax.numpy as jnp
  a = jnp.ones((PEAK_N, PEAK_N), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  return best_rate(lambda: f(a).block_until_ready(), 2 * PEAK_N ** 3, PEAK_REPS)


def torch_peak(dev: str) -> float:
  """The same for PyTorch on `dev` ('cpu' or 'cuda')."""
  import torch
  a = torch.ones(PEAK_N, PEAK_N, device=dev)

  def mm():
    torch.mm(a, a)
    if dev == 'cuda':
      torch.cuda.synchronize()
  return best_rate(mm, 2 * PEAK_N ** 3, PEAK_REPS)


def define_flags(steps: int, warmup: int, rounds_help: str, steps_help: str, warmup_help: str):
  """The flags every comparison script takes (absl), with that script's defaults and wording."""
  from absl import flags
  flags.DEFINE_integer('rounds', 7, rounds_help, lower_bound=5)
  flags.DEFINE_integer('steps', steps, steps_help)
  flags.DEFINE_integer('warmup', warmup, warmup_help)
  flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the interval of the median ratio.')
  flags.DEFINE_integer('threads', os.cpu_count(), 'PyTorch CPU threads; XLA uses every core, so '
                       'the default (all cores) makes them equal.')
  flags.DEFINE_enum('isa', 'native', ['native', 'avx2'], 'avx2: hold XLA and PyTorch to AVX2 '
                    '(AVX2_ENV); native: whatever the environment says (by default the CPU\'s widest).')
  flags.DEFINE_enum('host_memory', 'kept', ['kept', 'returned'], 'kept: glibc keeps freed memory '
                    'for reuse, as launch.py does (mesh.keep_host_memory); returned: glibc\'s default.')
  flags.DEFINE_string('platform', None, 'JAX platform (cpu, gpu); torch uses cuda when gpu.')
