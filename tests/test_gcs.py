"""A gs:// workdir, against an in-memory Cloud Storage emulator (tests/gcs_emulator.py): a run
killed and resumed in a bucket equals the same run on disk bit for bit and leaves the same files;
a damaged newest checkpoint in a bucket is moved aside and the run still ends bit-identical;
--mode=eval reads from the bucket; a bucket that cannot be reached fails in one line, quickly."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import chex
import pytest

from configs import mnist, ring2d
from gan_jax import train
from gan_jax.checkpoint import DAMAGED_DIR, MANIFEST_DIR, Checkpoints
from tests import launcher
from tests.conftest import ROOT, wait_for
from tests.gcs_emulator import gcs  # noqa: F401  (the fixture)

BASE = ['--config=configs/ring2d.py', '--config.mesh.platform=cpu', '--config.mesh.num_devices=1']
# the paper's MNIST MLP pair (maxout D with dropout), narrowed; on 2,000 training images
MNIST_SPLITS = dict(train_split='train[:2000]', valid_split='train[2000:2200]', eval_split='train[2200:2400]')


def mnist_base(mnist_dir, tfds_dir):
  return ['--config=configs/mnist.py', '--config.mesh.platform=cpu', '--config.mesh.num_devices=1',
          f'--config.data.manual_dir={mnist_dir}', f'--config.data.data_dir={tfds_dir}',
          '--config.model.g_kwargs.hidden=64', '--config.model.d_kwargs.units=16', '--config.eval_every_steps=100000',
          *(f'--config.data.{k}={v}' for k, v in MNIST_SPLITS.items())]


def cmd(workdir, *overrides, base=None):
  return [sys.executable, 'launch.py', *(base or BASE), f'--workdir={workdir}', *overrides]


_STARTED = []


@pytest.fixture(autouse=True)
def _no_launch_outlives_its_test():
  yield
  while _STARTED:
    proc = _STARTED.pop()
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def start(workdir, *overrides, out=subprocess.PIPE, base=None):
  """launch.py in the background, with this process's environment (the emulator's variables)."""
  proc = launcher.Popen(cmd(workdir, *overrides, base=base), cwd=ROOT, env=dict(os.environ), text=True,
                          stdout=out, stderr=subprocess.STDOUT if out is not subprocess.PIPE else subprocess.PIPE)
  _STARTED.append(proc)
  return proc


def finish(proc, timeout=120):
  """(returncode, stderr) of a started launch.py; a hang is killed and fails the test."""
  try:
    _, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f'launch.py still running after {timeout} s:\n{(err or "")[-2000:]}')
  return proc.returncode, err


def run(workdir, *overrides, timeout=120):
  return finish(start(workdir, *overrides), timeout)


def final_state(workdir, step, config=None):
  """The GANState of `step` in `workdir` (a local path or gs://), read as a reader does."""
  c = config or ring2d.get_config()
  c.mesh.num_devices = 1
  ckpt = Checkpoints(str(workdir), read_only=True)
  try:
    state, _ = ckpt.restore(step, train.setup(c, training=False).init_state)
  finally:
    ckpt.close()
  return state


def local_files(root):
  return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def layout(paths):
  """Paths with the names orbax draws at random (ocdbt's data files) and TensorBoard's event file
  names left out: what every run of the same command must write."""
  return sorted({re.sub(r'/d/[0-9a-f]+$', '/d/*', p) for p in paths if not p.startswith('events.out.tfevents.')})


def history(rows):
  """eval_history.jsonl rows without the training clock (which no two runs share)."""
  return [{k: v for k, v in json.loads(r).items() if k != 'train_seconds'} for r in rows.splitlines()]


def _prepared_mnist(tfds_dir, mnist_dir):
  """The prepared MNIST (tfds' version folder): (folder, names of its files)."""
  from gan_jax.data import tfds_source
  folder = os.fspath(tfds_source.prepare('mnist', tfds_dir, mnist_dir).data_dir)
  return folder, sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))


def test_mnist_mlp_into_a_bucket_killed_and_resumed_equals_the_same_run_on_disk(gcs, tmp_path, mnist_dir, tfds_dir):
  """The paper's MNIST pair (uint8 batches from the record cache, dropout), SIGKILLed mid-run; in
  the bucket run the prepared data comes from the bucket too (copied once to a local cache)."""
  base = mnist_base(mnist_dir, tfds_dir)
  args = ['--config.train.num_steps=300', '--config.checkpoint_every_steps=50', '--config.log_every_steps=50']
  local, local_log = tmp_path / 'local', tmp_path / 'local.log'
  with open(local_log, 'w') as out:
    on_disk = start(local, *args, out=out, base=base)
  # the data prepared for both runs, and the step compiled (the bucket run finds it in the cache)
  wait_for(on_disk, 'step 50/300', local_log)
  folder, names = _prepared_mnist(tfds_dir, mnist_dir)
  for name in names:  # as `gcloud storage cp -r` would put it there
    gcs.write(f'tfds/mnist/3.0.1/{name}', open(os.path.join(folder, name), 'rb').read())
  base = [b for b in base if 'data_dir' not in b] + [f'--config.data.data_dir={gcs.path("tfds")}',
                                                     f'--config.data.cache_dir={tmp_path / "cache"}']
  log = tmp_path / 'killed.log'
  with open(log, 'w') as out:
    proc = start(gcs.path('run'), *args, out=out, base=base)
    try:
      wait_for(proc, 'step 150/300', log)
    finally:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
  assert f'Copying mnist from {gcs.path("tfds/mnist/3.0.1")}' in log.read_text()
  code, err = finish(start(gcs.path('run'), *args, base=base))
  assert code == 0 and 'Traceback' not in err and 'Copying mnist' not in err, err[-2000:]
  assert 50 <= int(err.split('Resumed from the checkpoint at step ')[1].split()[0]) < 300
  assert on_disk.wait(timeout=120) == 0, local_log.read_text()[-2000:]
  c = mnist.get_config()
  c.model.g_kwargs.hidden, c.model.d_kwargs.units = 64, 16
  c.data.manual_dir, c.data.data_dir = mnist_dir, tfds_dir
  c.data.update(MNIST_SPLITS)
  chex.assert_trees_all_equal(final_state(local, 300, c), final_state(gcs.path('run'), 300, c))


def test_data_prepared_on_this_host_is_uploaded_to_a_bucket_data_dir(gcs, tmp_path, mnist_dir, tfds_dir):
  """data.data_dir in a bucket that lacks the dataset: it is prepared on local disk (here: found
  prepared in the local cache) and uploaded, every file as it is on disk, the decoded records not."""
  from gan_jax.data import tfds_source
  folder, names = _prepared_mnist(tfds_dir, mnist_dir)
  local = tmp_path / 'cache' / 'tensorflow_datasets' / 'mnist' / '3.0.1'
  (local / 'gan_jax_records').mkdir(parents=True)
  (local / 'gan_jax_records' / 'images.u8').write_bytes(b'decoded records stay on this host')
  for name in names:
    os.symlink(os.path.join(folder, name), local / name)
  c = mnist.get_config()
  c.data.manual_dir, c.data.data_dir, c.data.cache_dir = mnist_dir, gcs.path('tfds'), str(tmp_path / 'cache')
  builder = tfds_source.readable_builder(c.data)
  assert builder.is_prepared() and os.fspath(builder.data_dir) == str(local)
  assert gcs.list('tfds/mnist/3.0.1') == names  # every object, recursively: no decoded records
  for name in names:
    assert gcs.read(f'tfds/mnist/3.0.1/{name}') == open(os.path.join(folder, name), 'rb').read(), name


def test_ring2d_into_a_bucket_killed_and_resumed_equals_the_same_run_on_disk(gcs, tmp_path):
  args = ['--config.train.num_steps=600', '--config.checkpoint_every_steps=100', '--config.log_every_steps=100']
  wd, local = gcs.path('run'), tmp_path / 'local'
  on_disk = start(local, *args)  # the uninterrupted run, beside the one to be killed
  log = tmp_path / 'killed.log'
  with open(log, 'w') as out:
    proc = start(wd, *args, out=out)
    try:
      # by step 300's line, step 200's save has waited for step 100's and recorded its files
      wait_for(proc, 'step 300/600', log)
    finally:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
  assert '100' in gcs.names('run/checkpoints'), gcs.list('run')
  code, err = run(wd, *args)
  assert code == 0 and 'Traceback' not in err, err[-2000:]
  resumed_at = int(err.split('Resumed from the checkpoint at step ')[1].split()[0])
  assert 100 <= resumed_at < 600, 'the kill must land mid-run'
  assert 'step 600/600' in err
  code, err = finish(on_disk)
  assert code == 0, err[-2000:]
  chex.assert_trees_all_equal(final_state(local, 600), final_state(wd, 600))
  # the bucket holds what the directory holds: checkpoints and their manifests, the history, samples
  in_bucket, on_disk_files = gcs.list('run'), local_files(local)
  assert layout(in_bucket) == layout(on_disk_files), (layout(in_bucket), layout(on_disk_files))
  for expected in ('checkpoints/600/commit_success.txt', f'{MANIFEST_DIR}/600.json', 'eval_history.jsonl',
                   'samples/step_0000600.png'):
    assert expected in in_bucket, expected
  assert gcs.names('run/checkpoints') == ['400', '500', '600']
  assert any(p.startswith('events.out.tfevents.') for p in in_bucket)
  assert history(gcs.read('run/eval_history.jsonl').decode()) == history((local / 'eval_history.jsonl').read_text())
  assert gcs.read('run/samples/step_0000600.png') == (local / 'samples' / 'step_0000600.png').read_bytes()


def test_damaged_newest_checkpoint_in_a_bucket_falls_back_and_is_moved_aside(gcs, tmp_path):
  args = ['--config.checkpoint_every_steps=10', '--config.log_every_steps=10']
  wd, local = gcs.path('run'), tmp_path / 'whole'
  whole = start(local, '--config.train.num_steps=30', *args)
  code, err = run(wd, '--config.train.num_steps=20', *args)
  assert code == 0, err[-2000:]
  assert gcs.names('run/checkpoints') == ['10', '20']
  # one flipped bit in the middle of the largest array file of step 20 (orbax reads it back happily)
  state_files = [f'checkpoints/20/state/{p}' for p in gcs.list('run/checkpoints/20/state')]
  biggest = max(state_files, key=lambda p: len(gcs.read(f'run/{p}')))
  step_20 = gcs.list('run/checkpoints/20')
  data = bytearray(gcs.read(f'run/{biggest}'))
  data[len(data) // 2] ^= 0x04
  gcs.write(f'run/{biggest}', bytes(data))
  code, err = run(wd, '--config.train.num_steps=30', *args)
  assert code == 0 and 'Traceback' not in err, err[-2000:]
  damage = [line for line in err.splitlines() if 'is damaged' in line]
  assert len(damage) == 1, err[-2000:]
  assert 'The checkpoint at step 20' in damage[0] and 'changed since it was saved' in damage[0], damage
  assert 'Resumed from the checkpoint at step 10' in err, err[-2000:]
  moved = gcs.names(f'run/{DAMAGED_DIR}')
  assert len(moved) == 1 and moved[0].startswith('20-'), moved
  aside = f'run/{DAMAGED_DIR}/{moved[0]}'
  assert sorted(set(gcs.list(aside)) - {'WHY.txt', 'MANIFEST.json'}) == step_20, 'moved, every file'
  assert gcs.read(f'{aside}/WHY.txt').decode().strip() and gcs.exists(f'{aside}/MANIFEST.json')
  assert gcs.read(f'{aside}/{biggest[len("checkpoints/20/"):]}') == bytes(data), 'moved aside as it was'
  assert gcs.names('run/checkpoints') == ['10', '20', '30']  # 20 trained and saved again
  code, err = finish(whole)
  assert code == 0, err[-2000:]
  chex.assert_trees_all_equal(final_state(local, 30), final_state(wd, 30))


def test_eval_mode_reads_from_the_bucket(gcs):
  wd = gcs.path('run')
  code, err = run(wd, '--config.train.num_steps=20', '--config.checkpoint_every_steps=10')
  assert code == 0, err[-2000:]
  assert not gcs.exists('run/eval.json')
  code, err = run(wd, '--mode=eval')
  assert code == 0 and 'Traceback' not in err, err[-2000:]
  assert gcs.exists('run/eval.json'), gcs.names('run')
  assert not os.path.exists(os.path.join(ROOT, 'gs:')), 'a bucket path was written as a local folder'
  result = json.loads(gcs.read('run/eval.json'))
  assert result['step'] == 20 and 'modes_covered' in result, result


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _fails_in_one_line(workdir, within=15.0):
  t0 = time.time()
  code, err = run(workdir, '--config.train.num_steps=5', timeout=60)
  took = time.time() - t0
  last = err.strip().splitlines()[-1] if err.strip() else ''
  assert code == 2 and 'Traceback' not in err, err[-2000:]
  assert last.startswith('error: ') and workdir in last, last
  assert took < within, f'{took:.1f} s to fail'
  return took


def test_unreachable_bucket_fails_in_one_line_within_15_s(gcs, monkeypatch):
  nobody = f'http://127.0.0.1:{_free_port()}'  # nothing listens there
  with monkeypatch.context() as m:
    m.setenv('STORAGE_EMULATOR_HOST', nobody)
    m.setenv('TENSORSTORE_GCS_HTTP_URL', nobody)
    _fails_in_one_line(gcs.path('run'))
  # a live service, a bucket it does not have
  _fails_in_one_line('gs://no-such-bucket/run')
  assert gcs.list() == []  # and nothing written into the bucket that exists
