"""Shared fixtures. Four simulated CPU devices let the data-parallel tests run anywhere."""
import os
import sys
import tempfile

# Many tests start launch.py on the same small configs: a persistent compilation cache (keyed by
# the program, so a code change misses it) saves ~5 s of XLA compilation per start. Set before
# jax is imported, so this process and every launch.py it starts use it.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'gan_jax_test_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

# The tests compile ~2,500 XLA programs, and on a CPU half their time is compiling. Two XLA
# settings compile faster than the defaults a run uses, for the same operations: LLVM at
# optimisation level 1 instead of 3, and XLA's legacy fusion emitters (fewer, simpler kernels);
# together the initial states and steps compile in ~0.6x the time and run within a few percent
# (benchmarks/compile_level.py, docs/testing.md). Results differ from the defaults' in the last
# bits; every property the tests check (against references, within tolerances, or bit for bit
# between two runs of the same build) holds with either, but one: pmap's and shard_map's
# two-process programs are bit-equal as the new emitters compile them, not as the legacy ones do
# (~1e-9 apart after 30 ring2d steps), so that test compiles them with the new emitters
# (with_fusion_emitters). An XLA_FLAGS that names a setting keeps it
# (--xla_backend_optimization_level=3 --xla_cpu_use_fusion_emitters=true: the build runs use).
_FAST_COMPILE = {'--xla_backend_optimization_level': '1', '--xla_cpu_use_fusion_emitters': 'false'}
# the XLA_FLAGS the test command was given (pytest-xdist's workers inherit the amended one)
os.environ.setdefault('GAN_JAX_TEST_GIVEN_XLA_FLAGS', os.environ.get('XLA_FLAGS', ''))
_LEVEL_NAMED = '--xla_backend_optimization_level' in os.environ['GAN_JAX_TEST_GIVEN_XLA_FLAGS']
for _flag, _value in _FAST_COMPILE.items():
  if _flag not in os.environ.get('XLA_FLAGS', ''):
    os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}={_value}".strip()


def _with_flag(old: str, new: str, env=None) -> dict:
  """`env` (default: this process's environment now; fixtures may have added to it) with the
  tests' XLA setting `old` replaced by `new` (a setting XLA_FLAGS named otherwise is kept)."""
  env = dict(os.environ if env is None else env)
  env['XLA_FLAGS'] = env.get('XLA_FLAGS', '').replace(old, new)
  return env


def with_fusion_emitters() -> dict:
  """This process's environment, compiling with XLA's new fusion emitters as runs do."""
  return _with_flag('--xla_cpu_use_fusion_emitters=false', '--xla_cpu_use_fusion_emitters=true')


def compile_bound(env=None) -> dict:
  """`env` at LLVM level 0 instead of the tests' 1, for the runs of a few steps that each process
  of a multi-process run compiles alone: process 1 never finds its programs in the compilation
  cache (jax writes it from process 0 only, and process 1's keys differ), so it compiles every
  program in every run. Level 0 compiles the steps and initial states in ~0.5x level 1's time
  and runs their steps 2-6x slower (benchmarks/compile_level.py), which 30 steps do not notice."""
  return _with_flag('--xla_backend_optimization_level=1', '--xla_backend_optimization_level=0', env)


# Each pytest-xdist worker (and every launch.py it starts) keeps to its own share of the cores
# (one each under -n auto): XLA sizes its thread pools to the cores it may use (one Eigen thread,
# not one per core), so the workers' programs no longer compete for every core: the step, theory
# and preemption tests in 0.88x the wall time on 2 cores, alternated runs (docs/testing.md).
_ALL_CORES = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else None
if os.environ.get('PYTEST_XDIST_WORKER', '').startswith('gw') and hasattr(os, 'sched_setaffinity'):
  _cores, _i = sorted(os.sched_getaffinity(0)), int(os.environ['PYTEST_XDIST_WORKER'][2:])
  _n = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', len(_cores)))
  os.sched_setaffinity(0, _cores[_i * len(_cores) // _n:(_i + 1) * len(_cores) // _n] or [_cores[_i % len(_cores)]])

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from gan_jax import host_memory  # noqa: E402

host_memory.keep_freed_memory()  # as launch.py does, before JAX's backend starts: faster steps

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update('jax_num_cpu_devices', 4)  # before any backend starts

import pytest  # noqa: E402


# A test marked compile_bound compiles programs it runs only a few times (a step or two, a
# forward pass): XLA compiles them without most optimisations (jax_disable_most_optimizations:
# LLVM level 0, its expensive passes off), in ~0.5x the time; its steps run 2-5x slower, which a
# few steps do not notice, and every property those tests check (against references within
# tolerances, or bit for bit between programs compiled alike) holds at either setting
# (docs/testing.md); an XLA_FLAGS that names a level keeps it for these tests too. jax's
# in-memory caches do not key on the setting, so they are cleared when it changes: a program
# compiled under one setting is never run under the other.
@pytest.fixture(autouse=True)
def _compile_setting(request):
  wanted = request.node.get_closest_marker('compile_bound') is not None and not _LEVEL_NAMED
  if wanted != jax.config.values['jax_disable_most_optimizations']:
    jax.clear_caches()
    jax.config.update('jax_disable_most_optimizations', wanted)


def _archives(env_var, name):
  """The directory of the official `name` archives ($env_var, else ../shared/data/name), or None."""
  path = os.environ.get(env_var) or os.path.join(ROOT, '..', 'shared', 'data', name)
  return os.path.abspath(path) if os.path.isfile(os.path.join(path, 'train-images-idx3-ubyte.gz')) else None


def _archive_dir(env_var, name):
  return _archives(env_var, name) or pytest.fail(
      f'the official {name} archives are needed: set {env_var} to their directory')


@pytest.fixture(scope='session')
def mnist_dir():
  return _archive_dir('GAN_JAX_MNIST_DIR', 'mnist')


@pytest.fixture(scope='session')
def fashion_mnist_dir():
  return _archive_dir('GAN_JAX_FASHION_MNIST_DIR', 'fashion_mnist')


def _shared_tfds_path(tmp_path_factory):
  base = tmp_path_factory.getbasetemp()  # pytest-xdist's workers' temp dirs sit side by side
  return (base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base) / 'tfds_shared'


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
  """When a test that will run needs MNIST, one worker starts preparing and decoding it in the
  background (tests/shared_mnist.py), on every core, while the workers run other tests."""
  if os.environ.get('PYTEST_XDIST_WORKER', 'gw0') != 'gw0' or not any('tfds_dir' in i.fixturenames for i in items):
    return
  archives = _archives('GAN_JAX_MNIST_DIR', 'mnist')
  if archives is None:
    return  # the fixture fails with the fix
  import subprocess
  path = _shared_tfds_path(config._tmp_path_factory)  # pylint: disable=protected-access
  cores = ','.join(map(str, sorted(_ALL_CORES or [])))
  _background.append(subprocess.Popen(
      [sys.executable, '-m', 'tests.shared_mnist', str(path), archives, cores], cwd=ROOT,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


_background = []


def pytest_sessionfinish(session, exitstatus):
  for proc in _background:  # done long before, unless the run was cut short
    if exitstatus == pytest.ExitCode.INTERRUPTED:
      proc.kill()
    proc.wait()


@pytest.fixture(scope='session')
def tfds_dir(tmp_path_factory, mnist_dir):
  """One prepared-data directory for the whole run, shared by the workers: MNIST prepared and its
  train and test splits decoded once (tests/shared_mnist.py; a lock keeps a second process waiting
  until the first has finished). The tests' slices of those splits read their records."""
  from tests import shared_mnist
  path = _shared_tfds_path(tmp_path_factory)
  shared_mnist.prepare_and_decode(str(path), mnist_dir)
  return str(path)


@pytest.fixture
def cifar10_mock(monkeypatch):
  """tfds.testing.mock_data (any tfds dataset, CIFAR-10 here first). tfds 4.9.10's mock sets
  `__getitems__` as an unbound instance attribute, so batched reads through it fail with a
  TypeError; this mends only that. The mock stands in for the network, so the download probe is
  told the host answers."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.testing import mocking
  from gan_jax.data import tfds_source
  monkeypatch.setattr(mocking, '_getitems',
                      lambda keys, generator, serialized=False: [generator[k] for k in keys])
  monkeypatch.setattr(tfds_source, 'unreachable', lambda hosts: None)
  return lambda n: tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE)


def wait_for(proc, text, log, timeout=120):
  """Until `text` appears in the file `log` that the running `proc` writes; fails if it exits
  first or the text does not come in time."""
  import time
  deadline = time.time() + timeout
  while time.time() < deadline:
    if text in log.read_text():
      return
    assert proc.poll() is None, log.read_text()[-2000:]
    time.sleep(0.05)
  raise AssertionError(f'{text!r} not seen in {timeout} s:\n{log.read_text()[-2000:]}')


def flat_draw(draw, key, shape, **kwargs):
  """draw(key, shape) (jax.random.normal, uniform, ...), the same values drawn flat and reshaped:
  XLA:CPU compiles a draw over an image batch's or a kernel's four axes ~4x slower
  (benchmarks/draw_compile.py)."""
  return draw(key, (int(np.prod(shape)),), **kwargs).reshape(shape)


def tiny_paper_config(config):
  """The paper's MNIST architecture, narrowed so tests run in seconds."""
  config.model.g_kwargs.hidden = (64, 64) if config.model.generator == 'improved_gan' else 64
  if config.model.discriminator == 'improved_gan':
    config.model.d_kwargs.hidden = (32, 16)
  elif config.model.discriminator == 'toy_mlp':
    config.model.d_kwargs.hidden = 32
  else:
    config.model.d_kwargs.units = 16
  return config


def jit_apply(module):
  """module.apply as one program: op by op, each layer and random draw compiles on its own."""
  return jax.jit(module.apply, static_argnames=('train', 'capture_intermediates', 'mutable'))


def dispatches(spec, state, batches, n, api='pmap'):
  """(state, metrics) after one dispatch of the training loop's program (step.make_train_steps)
  per element of `batches` on the first n devices (`api`: 'pmap' or 'shard_map'). Each element is
  [steps, k, global batch, ...] (or a dict of such arrays), split device-major as the input
  pipeline splits it: devices see [n, steps, k, global batch / n, ...]."""
  from gan_jax import parallel, step
  dp = parallel.DataParallel(jax.local_devices()[:n], api)
  fn, rstate, metrics = step.make_train_steps(spec, dp), dp.replicate(state), None
  split = lambda v: np.moveaxis(v.reshape(v.shape[:2] + (n, v.shape[2] // n) + v.shape[3:]), 2, 0)
  for batch in batches:
    rstate, metrics = fn(rstate, dp.batch(jax.tree.map(split, batch)))
  return dp.unreplicate((rstate, metrics))
