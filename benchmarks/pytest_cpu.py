"""A pytest plugin: each test's CPU seconds (the test process and every process it starts) and wall
seconds, one JSON line per test, for finding where the suite's time goes.

    mkdir /sys/fs/cgroup/cpuacct/suite && echo $$ > /sys/fs/cgroup/cpuacct/suite/tasks  # this shell
    PYTEST_CPU_CGROUP=/sys/fs/cgroup/cpuacct/suite PYTEST_CPU_OUT=cpu.jsonl PYTHONPATH=benchmarks \\
        python -m pytest -q -n 0 -p pytest_cpu tests

CPU time is read from the cgroup's `cpuacct.usage` (cgroup v1) or `cpu.stat` (v2), which counts
the children the tests start (launch.py runs, their forkserver, GCS emulators) while they run,
unlike `os.times()`, which counts a child only once it is waited for. Without PYTEST_CPU_CGROUP it
reads the whole machine's busy time from /proc/stat: then run nothing else. `-n 0` runs the tests
one after another, so each interval holds one test. Each line also holds the seconds the test
process itself spent tracing, lowering and compiling with XLA (jax.monitoring's events), and how
many times, and the XLA compilations by jitted function (`compiled`: name → [count, seconds]);
the launch.py processes a test starts are not in these.
"""
import json
import os
import time

import pytest

_CGROUP = os.environ.get('PYTEST_CPU_CGROUP')
_OUT = os.environ.get('PYTEST_CPU_OUT', 'pytest_cpu.jsonl')


def cpu_seconds() -> float:
  if _CGROUP and os.path.exists(os.path.join(_CGROUP, 'cpuacct.usage')):
    with open(os.path.join(_CGROUP, 'cpuacct.usage')) as f:
      return int(f.read()) / 1e9
  if _CGROUP:
    with open(os.path.join(_CGROUP, 'cpu.stat')) as f:
      return int(dict(line.split() for line in f)['usage_usec']) / 1e6
  with open('/proc/stat') as f:
    user, nice, system = (int(v) for v in f.readline().split()[1:4])
  return (user + nice + system) / os.sysconf('SC_CLK_TCK')


_JAX = {}  # seconds this process spent in jax's compile stages during the current test
_COMPILED = {}  # XLA compilations during the current test by jitted function: [count, seconds]


def _jax_duration(event, seconds, fun_name=None, **_):
  for stage in ('jaxpr_trace', 'jaxpr_to_mlir_module', 'backend_compile'):
    if event.endswith(f'/{stage}_duration'):
      _JAX[stage] = _JAX.get(stage, 0.0) + seconds
      _JAX[stage + '_count'] = _JAX.get(stage + '_count', 0) + 1
  if event.endswith('/backend_compile_duration'):
    entry = _COMPILED.setdefault(str(fun_name), [0, 0.0])
    entry[0], entry[1] = entry[0] + 1, entry[1] + seconds


def pytest_configure(config):
  import jax
  jax.monitoring.register_event_duration_secs_listener(_jax_duration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  _JAX.clear()
  _COMPILED.clear()
  cpu, wall = cpu_seconds(), time.perf_counter()
  yield
  with open(_OUT, 'a') as f:
    f.write(json.dumps(dict(test=item.nodeid, cpu=round(cpu_seconds() - cpu, 2),
                            wall=round(time.perf_counter() - wall, 2),
                            **{k: round(v, 2) for k, v in _JAX.items()},
                            compiled={k: [n, round(v, 3)] for k, (n, v) in _COMPILED.items()})) + '\n')
