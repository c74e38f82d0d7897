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
