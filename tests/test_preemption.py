"""Preemption and failure: SIGKILL then resume is bit-exact, SIGTERM saves and exits 0, NaN stops
training and keeps the last good checkpoint, unwritable workdirs fail clearly, two processes on
loopback equal one process with the same devices, and stop at the same step (SIGTERM to one of
them, the time budget)."""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import chex
import jax
import numpy as np

from configs import mnist, ring2d
from gan_jax import train
from gan_jax.checkpoint import Checkpoints
from tests import launcher
from tests.conftest import ROOT, compile_bound, tiny_paper_config, with_fusion_emitters, wait_for

BASE = ['--config=configs/ring2d.py', '--config.mesh.platform=cpu']


def cmd(workdir, *overrides, base=BASE):
  return [sys.executable, 'launch.py', *base, f'--workdir={workdir}', *overrides]


def run(workdir, *overrides, base=BASE, env=None):
  return launcher.run(cmd(workdir, *overrides, base=base), cwd=ROOT, env=env, capture_output=True, text=True,
                      timeout=300)


def final_state(workdir, step, num_devices=1, **config_overrides):
  c = ring2d.get_config()
  c.mesh.num_devices = num_devices
  for k, v in config_overrides.items():
    setattr(c.optim.d, k, v)
  exp = train.setup(c, training=False)  # as --mode=eval reads it
  ckpt = Checkpoints(str(workdir), read_only=True)
  state, _ = ckpt.restore(step, exp.init_state)
  ckpt.close()
  return state


def test_sigkill_at_a_random_step_then_resume_is_bit_exact(tmp_path):
  args = ['--config.train.num_steps=500', '--config.checkpoint_every_steps=50',
          '--config.mesh.num_devices=1', '--config.log_every_steps=50']
  assert run(tmp_path / 'whole', *args).returncode == 0
  log = tmp_path / 'killed.log'
  with open(log, 'w') as out:
    proc = launcher.Popen(cmd(tmp_path / 'killed', *args), cwd=ROOT, stdout=out, stderr=out)
    wait_for(proc, 'step 150/500', log)
    time.sleep(random.uniform(0.0, 0.5))  # ~150 steps/s: the kill lands before about step 250
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  r = run(tmp_path / 'killed', *args)
  assert r.returncode == 0, r.stderr[-2000:]
  resumed_at = int(r.stderr.split('Resumed from the checkpoint at step ')[1].split()[0])
  # the kill can land while step 150's checkpoint is still being written: then 100 is the newest
  assert 100 <= resumed_at < 500, 'the kill must land mid-run'
  chex.assert_trees_all_equal(final_state(tmp_path / 'whole', 500), final_state(tmp_path / 'killed', 500))


def test_sigterm_saves_the_current_step_and_exits_0(tmp_path):
  log = tmp_path / 'run.log'
  with open(log, 'w') as out:
    proc = launcher.Popen(cmd(tmp_path / 'wd', '--config.train.num_steps=1000000', '--config.log_every_steps=50'),
                            cwd=ROOT, stdout=out, stderr=out)
    wait_for(proc, 'step 100/', log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
  text = log.read_text()
  stopped = int(text.split('Stopped by SIGTERM at step ')[1].split(';')[0])
  assert stopped >= 100 and str(stopped) in os.listdir(tmp_path / 'wd' / 'checkpoints')


def test_sigint_during_setup_stops_at_the_first_step_boundary_with_a_checkpoint(tmp_path):
  # the signal lands while the data, the initial state and the first step are being prepared,
  # where a KeyboardInterrupt used to end inside library code (or be swallowed by it)
  log = tmp_path / 'run.log'
  with open(log, 'w') as out:
    proc = launcher.Popen(cmd(tmp_path / 'wd', '--config.train.num_steps=1000000'), cwd=ROOT, stdout=out, stderr=out)
    wait_for(proc, 'train: workdir', log)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 0, log.read_text()[-2000:]
  text = log.read_text()
  assert 'SIGINT: stopping with a checkpoint at the next step boundary' in text
  stopped = int(text.split('Stopped by SIGINT at step ')[1].split(';')[0])
  assert 0 < stopped <= 2 * ring2d.get_config().train.steps_per_call, text[-2000:]
  assert str(stopped) in os.listdir(tmp_path / 'wd' / 'checkpoints')


def test_non_finite_step_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  wd = tmp_path / 'wd'
  assert run(wd, '--config.train.num_steps=200', '--config.checkpoint_every_steps=50').returncode == 0
  before = sorted(os.listdir(wd / 'checkpoints'))
  r = run(wd, '--config.train.num_steps=400', '--config.checkpoint_every_steps=50', '--config.optim.d.lr=1e30')
  assert r.returncode == 3, r.stderr[-2000:]
  assert 'step 201 produced non-finite' in r.stderr and 'last good checkpoint, step 200' in r.stderr
  assert sorted(os.listdir(wd / 'checkpoints')) == before
  good = final_state(wd, 200)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(good))


def test_partially_written_checkpoint_is_never_picked(tmp_path):
  wd = tmp_path / 'wd'
  assert run(wd, '--config.train.num_steps=20').returncode == 0
  partial = wd / 'checkpoints' / '30.orbax-checkpoint-tmp'
  partial.mkdir()
  (partial / 'junk').write_bytes(b'half a checkpoint')
  r = run(wd, '--config.train.num_steps=40')
  assert r.returncode == 0 and 'Resumed from the checkpoint at step 20' in r.stderr, r.stderr[-2000:]


def test_unwritable_workdir_fails_clearly(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  r = run(blocker / 'workdir', '--config.train.num_steps=5')
  assert r.returncode == 2 and 'is not a writable directory' in r.stderr, r.stderr[-2000:]


def test_same_config_and_seed_give_identical_parameters(tmp_path):
  runs = [run(tmp_path / f'r{i}', '--config.train.num_steps=50', '--config.mesh.num_devices=2') for i in range(2)]
  assert all(r.returncode == 0 for r in runs)
  chex.assert_trees_all_equal(final_state(tmp_path / 'r0', 50, 2), final_state(tmp_path / 'r1', 50, 2))


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _two_processes(workdir, logs, *args, base=BASE, env=None):
  """Processes 0 and 1 of one run, each compiling at LLVM level 0 (conftest.compile_bound)."""
  port, env = _free_port(), compile_bound(env)
  return [launcher.Popen(cmd(workdir, *args, '--config.mesh.num_devices=2',
                               f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
                               f'--process_id={i}', base=base), cwd=ROOT, env=env, stdout=log,
                         stderr=subprocess.STDOUT)
          for i, log in enumerate(logs)]


def _wait_all(procs, timeout):
  """Exit codes; a process still running at the timeout (e.g. waiting in a collective for one
  that left) is killed and reads as 'hung'."""
  deadline, codes = time.time() + timeout, []
  for p in procs:
    try:
      codes.append(p.wait(timeout=max(1.0, deadline - time.time())))
    except subprocess.TimeoutExpired:
      codes.append('hung')
  for p in procs:
    p.kill()
    p.wait()
  return codes


def test_two_processes_on_loopback_equal_one_process(tmp_path):
  """2 processes × 2 devices: with pmap, and with mesh.api=shard_map (a mesh over both processes'
  devices, global arrays, orbax writing them from both) equal to pmap's bit for bit; each equal
  to 1 process × 4 devices up to float order. Compiled with XLA's fusion emitters, as runs are
  (conftest.py: with the tests' legacy ones the two programs differ in the last bits)."""
  args = ['--config.train.num_steps=30', '--config.checkpoint_every_steps=10']
  for api in ('pmap', 'shard_map'):
    logs = [open(tmp_path / f'{api}{i}.log', 'w+') for i in range(2)]
    codes = _wait_all(_two_processes(tmp_path / api, logs, *args, f'--config.mesh.api={api}',
                                     env=with_fusion_emitters()), 300)
    outs = [(tmp_path / f'{api}{i}.log').read_text() for i in range(2)]
    assert codes == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    assert 'step 30/30' in outs[0] and 'step 30/30' not in outs[1]  # process 0 alone logs
  chex.assert_trees_all_equal(final_state(tmp_path / 'pmap', 30, 4), final_state(tmp_path / 'shard_map', 30, 4))
  assert run(tmp_path / 'single', *args, '--config.mesh.num_devices=4', env=compile_bound()).returncode == 0
  multi, single = final_state(tmp_path / 'shard_map', 30, 4), final_state(tmp_path / 'single', 30, 4)
  chex.assert_trees_all_close(multi, single, rtol=1e-5, atol=1e-6)
  # a pod preempted and back on another slice: the 2 × 2 checkpoint at step 20 resumed by 1 × 4
  # (and the other way, pmap) and by 1 × 1, with the same global batch, goes on with the same
  # batches (up to float order)
  for devices, api in ((4, 'pmap'), (1, 'shard_map')):
    moved = tmp_path / f'moved_to_{devices}'
    shutil.copytree(tmp_path / 'shard_map', moved)
    shutil.rmtree(moved / 'checkpoints' / '30')
    r = run(moved, *args, f'--config.mesh.num_devices={devices}', f'--config.mesh.api={api}', env=compile_bound())
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'written by 2 process(es); resuming with 1' in r.stderr and 'Resumed from the checkpoint at step 20' in r.stderr
    chex.assert_trees_all_close(final_state(moved, 30, devices), single, rtol=1e-5, atol=1e-6)


def test_two_processes_equal_one_process_on_the_paper_mnist_model_with_dropout(tmp_path, mnist_dir, tfds_dir):
  """The released recipe's step (maxout D with per-example dropout, simultaneous updates, SGD
  schedules, uint8 MNIST batches), narrowed: 2 processes × 2 devices == 1 process × 4 devices."""
  splits = dict(train_split='train[:2000]', valid_split='train[2000:2200]', eval_split='train[2200:2400]')
  base = ['--config=configs/mnist.py', '--config.mesh.platform=cpu', f'--config.data.manual_dir={mnist_dir}',
          f'--config.data.data_dir={tfds_dir}', '--config.model.g_kwargs.hidden=64',
          '--config.model.d_kwargs.units=16', *(f'--config.data.{k}={v}' for k, v in splits.items())]
  args = ['--config.train.num_steps=30', '--config.checkpoint_every_steps=10', '--config.eval_every_steps=30']
  single = run(tmp_path / 'single', *args, '--config.mesh.num_devices=4', base=base, env=compile_bound())  # prepares the data first
  assert single.returncode == 0, single.stderr[-2000:]
  logs = [open(tmp_path / f'p{i}.log', 'w+') for i in range(2)]
  codes = _wait_all(_two_processes(tmp_path / 'multi', logs, *args, base=base), 300)
  outs = [(tmp_path / f'p{i}.log').read_text() for i in range(2)]
  assert codes == [0, 0], outs[0][-2000:] + outs[1][-2000:]
  c = tiny_paper_config(mnist.get_config())
  c.data.manual_dir, c.data.data_dir, c.mesh.num_devices = mnist_dir, tfds_dir, 4
  c.data.update(splits)
  target = train.setup(c, training=False).init_state
  states = []
  for name in ('single', 'multi'):
    ckpt = Checkpoints(str(tmp_path / name), read_only=True)
    states.append(ckpt.restore(30, target)[0])
    ckpt.close()
  assert int(states[0].step) == 30
  chex.assert_trees_all_close(states[0], states[1], rtol=1e-5, atol=1e-6)


def _stopped_at(text, what):
  return int(text.split(what)[1].split(' at step ')[1].split(';')[0].split('.')[0].split()[0])


def test_two_processes_stop_at_the_same_step_on_the_time_budget_and_on_sigterm_to_one_and_resume(tmp_path):
  """The time budget stops both processes after the same step, with its checkpoint; run again,
  both resume from that step, and a SIGTERM that reaches one host only (a preemption notice)
  stops both at the same later step, with its checkpoint."""
  wd, args = tmp_path / 'wd', ['--config.train.num_steps=1000000', '--config.log_every_steps=10']
  paths = [tmp_path / f'budget{i}.log' for i in range(2)]
  codes = _wait_all(_two_processes(wd, [open(p, 'w+') for p in paths], *args,
                                   '--config.train.time_budget_minutes=0.05'), 180)
  texts = [p.read_text() for p in paths]
  assert codes == [0, 0], texts[0][-1500:] + texts[1][-1500:]
  steps = [_stopped_at(t, f'process {i}: Time budget of 0.05 training minutes reached') for i, t in enumerate(texts)]
  assert steps[0] == steps[1] > 0 and str(steps[0]) in os.listdir(wd / 'checkpoints'), steps
  budget_stop = steps[0]
  paths = [tmp_path / f'sigterm{i}.log' for i in range(2)]
  procs = _two_processes(wd, [open(p, 'w+') for p in paths], *args)
  wait_for(procs[0], f'Resumed from the checkpoint at step {budget_stop}', paths[0])
  # two processes sharing a core step slowly (~8/s): a few steps after resuming, not a hundred
  wait_for(procs[0], f'step {(budget_stop // 10 + 1) * 10}/', paths[0])
  procs[1].send_signal(signal.SIGTERM)
  codes = _wait_all(procs, 120)
  texts = [p.read_text() for p in paths]
  assert codes == [0, 0], texts[0][-1500:] + texts[1][-1500:]
  steps = [_stopped_at(texts[0], 'process 0: Stopped by a signal to another process'),
           _stopped_at(texts[1], 'process 1: Stopped by SIGTERM')]
  assert steps[0] == steps[1] > budget_stop and str(steps[0]) in os.listdir(wd / 'checkpoints'), steps
