"""End to end, as a user runs it: launch.py trains, resumes, and refuses bad input clearly."""
import glob
import json
import os
import re
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

from configs import cifar10, default, ring2d
from gan_jax import train
from gan_jax.checkpoint import Checkpoints
from gan_jax.errors import UserError
from gan_jax.eval import evaluate
from tests import launcher
from tests.conftest import ROOT, tiny_paper_config
from tests.test_input_pipeline import make_image_folder


def launch(workdir, *overrides, config='configs/ring2d.py'):
  cmd = [sys.executable, 'launch.py', f'--config={config}', f'--workdir={workdir}', *overrides]
  return launcher.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def ring(steps, **kw):
  c = ring2d.get_config()
  c.train.num_steps = steps
  c.mesh.num_devices = 1
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 5
  for k, v in kw.items():
    if isinstance(v, dict):
      c[k].update(v)
    else:
      c[k] = v
  return c


def test_launch_trains_writes_and_resumes(tmp_path):
  wd = tmp_path / 'run'
  r = launch(wd, '--config.train.num_steps=40', '--config.log_every_steps=20',
             '--config.eval_every_steps=20', '--config.checkpoint_every_steps=20')
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'step 40/40 (100.0%)' in r.stderr and 'steps/s' in r.stderr and 'ETA' in r.stderr
  assert sorted(os.listdir(wd / 'checkpoints')) == ['20', '40']
  assert os.path.exists(wd / 'samples' / 'step_0000040.png')
  assert glob.glob(str(wd / 'events.out.tfevents.*'))
  # resumed, and at the end evaluated once (eval.at_end: here ring2d's mode coverage)
  r = launch(wd, '--config.train.num_steps=60', '--config.log_every_steps=20', '--config.eval.at_end=True')
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'Resumed from the checkpoint at step 40' in r.stderr and 'step 60/60' in r.stderr
  assert 'Evaluating the checkpoint at step 60' in r.stderr and 'No Table 1 row for ring2d' in r.stdout
  evaluated = (wd / 'eval.json').read_text()
  assert json.loads(evaluated)['step'] == 60 and 'modes_covered' in json.loads(evaluated)
  # the same command again once the run is complete: says so, trains, saves and evaluates nothing
  history = (wd / 'eval_history.jsonl').read_text()
  r = launch(wd, '--config.train.num_steps=60', '--config.log_every_steps=20', '--config.eval.at_end=True')
  assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert 'is complete at step 60 (train.num_steps=60)' in r.stderr, r.stderr[-2000:]
  assert 'Evaluating the checkpoint' not in r.stderr and (wd / 'eval.json').read_text() == evaluated
  assert sorted(os.listdir(wd / 'checkpoints')) == ['20', '40', '60']
  assert (wd / 'eval_history.jsonl').read_text() == history


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path):
  whole = train.train_and_evaluate(ring(20), str(tmp_path / 'whole'))
  train.train_and_evaluate(ring(10), str(tmp_path / 'split'))
  target = jax.tree.map(jax.numpy.asarray, whole)
  first = Checkpoints(str(tmp_path / 'split'), read_only=True).restore(10, target)[1]['train_seconds']
  resumed = train.train_and_evaluate(ring(20), str(tmp_path / 'split'))
  chex.assert_trees_all_equal(whole, resumed)
  assert int(resumed.step) == 20
  # the training clock (time budgets, Parzen-vs-time history) goes on from where it stopped
  assert Checkpoints(str(tmp_path / 'split'), read_only=True).restore(20, target)[1]['train_seconds'] > first > 0


def test_a_changed_learning_rate_applies_on_resume(tmp_path, monkeypatch):
  """A constant learning rate changed on resume (a safe change) is the one the resumed steps use:
  the restored optimizer states take their hyperparameters from the config, not the checkpoint
  (nor from an initial state: a resumed run never computes one)."""
  from gan_jax import step
  train.train_and_evaluate(ring(10), str(tmp_path / 'run'))
  changed = ring(20)
  changed.optim.d.lr = 1e-4
  monkeypatch.setattr(step, 'create_state', lambda *a, **k: pytest.fail('the initial state was computed'))
  resumed = train.train_and_evaluate(changed, str(tmp_path / 'run'))
  assert ring(20).optim.d.lr == ring(20).optim.g.lr == 1e-3
  for opt_state, lr in ((resumed.d_opt_state, 1e-4), (resumed.g_opt_state, 1e-3)):
    rate = opt_state.hyperparams['learning_rate']
    assert rate.dtype == np.float32 and rate == np.float32(lr), (rate, lr)


def test_resumed_run_with_ema_equals_uninterrupted_run_bit_for_bit(tmp_path):
  whole = train.train_and_evaluate(ring(20, train=dict(ema_decay=0.9)), str(tmp_path / 'whole'))
  train.train_and_evaluate(ring(10, train=dict(ema_decay=0.9)), str(tmp_path / 'split'))
  resumed = train.train_and_evaluate(ring(20, train=dict(ema_decay=0.9)), str(tmp_path / 'split'))
  chex.assert_trees_all_equal(whole, resumed)
  assert whole.g_ema is not None
  r = launch(tmp_path / 'split', '--config.train.num_steps=30', '--config.mesh.num_devices=1')
  assert r.returncode == 2 and 'train.ema_decay: saved 0.9, now 0.0' in r.stderr, r.stderr[-1500:]


BAD_INPUTS = [
    (['--config.data.name=svhn'], "data.name='svhn' is not a tfds dataset"),
    (['--config.data.name=folder'], 'data.name=folder needs the image folder: --config.data.path=DIR'),
    (['--config.model.generator=unet'], "model.generator='unet' is unknown"),
    (['--config.model.g_output=relu'], "model.g_output='relu' is unknown; choose one of ('sigmoid', 'tanh', 'linear')"),
    (['--config.mesh.platform=tpuv4'], "mesh.platform='tpuv4' is unknown"),
    (['--config.train.k=0'], 'train.k=0'),
    (['--config.train.update_mode=simultanous'], "train.update_mode='simultanous' is unknown; choose one of ('alternating', 'simultaneous')"),
    (['--config.train.g_loss=wasserstein'], "train.g_loss='wasserstein' is unknown"),
    (['--config.train.d_loss=least_squares'], "train.d_loss='least_squares' is unknown; choose one of ('cross_entropy', 'hinge')"),
    (['--config.train.augment=color,flip'], "train.augment='color,flip': unknown augmentation 'flip'; choose a comma-separated subset of ('color', 'translation', 'cutout')"),
    (['--config.train.augment=cutout', '--config.train.game=bigan'], "train.augment='cutout' is for the paper's game (train.game=gan), not train.game=bigan"),
    (['--config.train.d_loss=hinge', '--config.train.game=bigan'], 'the hinge loss is a loss of the paper\'s game (train.game=gan), not of train.game=bigan'),
    (['--config.optim.d.lr=-0.1'], 'optim.d.lr=-0.1 must be positive'),
    (['--config.optim.g.name=rmsprop'], "optim.g.name='rmsprop' is unknown"),
    (['--config.optim.g.lr_decay=0.999'], 'optim.g.lr_decay=0.999 must be >= 1'),
    (['--config.data.scale=centered'], "data.scale='centered' is unknown"),
    (['--config.eval.periodic_parzen=sometimes'], "eval.periodic_parzen='sometimes' is unknown"),
    (['--config.eval.split=train'], "eval.split='train' is unknown; choose valid (to choose) or test (to report)"),
    (['--config.mesh.platform=cpu', '--config.mesh.num_devices=3'], 'not divisible by the 3 devices'),
    (['--config.train.update_mode=simultaneous', '--config.train.k=2'], 'train.k must be 1'),
    (['--config.train.ema_decay=1.0'], 'train.ema_decay=1.0 must be in [0, 1)'),
    (['--config.model.g_output_bias=marginal'], "model.g_output_bias='marginal' is unknown"),
    (['--config.model.generator=dcgan', '--config.model.g_output_bias=marginals'], 'which only the paper_mlp G has'),
    (['--config.model.generator=dcgan', '--config.model.g_output_bias=none', '--config.data.image_size=48'],
     'the dcgan models make square images of side 28, 32, 56, 64, 112, 128'),
    (['--config.log_every_steps=7', '--config.train.steps_per_call=2'], 'log_every_steps=7 must be a positive multiple'),
    (['--config.train.r1_gamma=-1.0'], 'train.r1_gamma=-1.0 must be >= 0'),
    (['--config.train.r1_gamma=1.0', '--config.train.game=bigan'], 'the R1 penalty is a term of the paper'),
    (['--config.train.r1_examples=-4'], 'train.r1_examples=-4 must be >= 0'),
    (['--config.mesh.api=pjit'], "mesh.api='pjit' is unknown; choose pmap or shard_map"),
    (['--config.data.cache_dir=gs://b/cache'], 'data.cache_dir=gs://b/cache: this is read from (or written to) local disk'),
]


def _overridden(overrides):
  c = ring2d.get_config()
  for o in overrides:
    key, value = o[len('--config.'):].split('=')
    *path, last = key.split('.')
    node = c
    for p in path:
      node = node[p]
    node[last] = type(node[last])(value) if node[last] is not None else (int(value) if value.isdigit() else value)
  return c


def test_bad_inputs_are_refused_before_anything_starts(tmp_path):
  """Every enumerated key and incompatible combination, through setup (what every mode runs
  first), and three of them through launch.py as typed: one line, exit 2, nothing written."""
  for overrides, message in BAD_INPUTS:
    with pytest.raises(UserError, match=re.escape(message)):
      train.setup(_overridden(overrides))
  for i in (0, 6, 23):
    overrides, message = BAD_INPUTS[i]
    wd = tmp_path / f'case{i}'
    r = launch(wd, *overrides)
    assert r.returncode == 2, (overrides, r.stderr[-1500:])
    assert message in r.stderr and 'Traceback' not in r.stderr, r.stderr[-1500:]
    assert r.stderr.strip().splitlines()[-1].startswith('error: ')
    assert not wd.exists(), f'{overrides} wrote into the workdir'
  # a mistyped key: ml_collections raises a bare AttributeError while absl parses the flags
  for flag, message in (('--config.train.numsteps=5', "no key 'numsteps' (did you mean 'num_steps'?)"),
                        ('--config.num_steps=5', "no key 'num_steps'")):
    r = launch(tmp_path / 'typo', '--config.seed=1', flag)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-1500:]
    assert r.stderr.strip().splitlines() == [f'error: {flag.split("=")[0]}: the config has {message}' + (
        '' if 'mean' in message else '; see the config file for its keys') + '.'], r.stderr


def test_missing_archives_fail_clearly(tmp_path):
  r = launch(tmp_path / 'wd', f'--config.data.manual_dir={tmp_path}', f'--config.data.data_dir={tmp_path / "tfds"}',
             config='configs/mnist.py')
  assert r.returncode == 2 and 'train-images-idx3-ubyte.gz is missing' in r.stderr, r.stderr[-1500:]
  assert not (tmp_path / 'wd').exists()


def test_incompatible_checkpoint_is_refused_and_kept(tmp_path):
  wd = tmp_path / 'run'
  assert launch(wd, '--config.train.num_steps=5').returncode == 0
  before = sorted(os.listdir(wd / 'checkpoints'))
  r = launch(wd, '--config.train.num_steps=10', '--config.model.g_kwargs.hidden=64')
  assert r.returncode == 2 and 'incompatible config' in r.stderr and 'model' in r.stderr, r.stderr[-1500:]
  assert sorted(os.listdir(wd / 'checkpoints')) == before


def test_cifar10_config_trains_on_mock_data(tmp_path, cifar10_mock):
  c = cifar10.get_config()
  c.data.data_dir = str(tmp_path / 'tfds')
  c.model.g_kwargs.width = c.model.d_kwargs.width = 32
  c.train.batch_size, c.train.num_steps, c.mesh.num_devices = 32, 3, 2
  c.num_samples = 16
  with cifar10_mock(128):
    final = train.train_and_evaluate(c, str(tmp_path / 'wd'))
  assert int(final.step) == 3
  assert all(np.all(np.isfinite(x)) for x in __import__('jax').tree.leaves(final.g_params))
  assert os.path.exists(tmp_path / 'wd' / 'samples' / 'step_0000003.png')


def test_several_steps_per_dispatch_equal_one_step_per_dispatch(tmp_path):
  one = train.train_and_evaluate(ring(20), str(tmp_path / 'one'))
  c = ring(20)
  c.train.steps_per_call = 5
  fused = train.train_and_evaluate(c, str(tmp_path / 'fused'))
  chex.assert_trees_all_close(one, fused, rtol=1e-5, atol=1e-6)
  assert int(fused.step) == 20
  c.train.steps_per_call = 3
  r = launch(tmp_path / 'bad', '--config.train.steps_per_call=3')
  assert r.returncode == 2 and 'multiple of train.steps_per_call=3' in r.stderr


def test_headline_command_offline_without_data_fails_fast(tmp_path):
  """`python launch.py --config=configs/cifar10.py`, exactly as typed, with no data and no network:
  one line naming what is missing and the flag that fixes it, within 15 s, nothing written."""
  workdir = os.path.join(ROOT, 'workdirs', 'cifar10')
  existed = os.path.exists(workdir)
  t0 = time.monotonic()
  r = subprocess.run([sys.executable, 'launch.py', '--config=configs/cifar10.py'], cwd=ROOT,
                     env={**os.environ, 'HOME': str(tmp_path)}, capture_output=True, text=True, timeout=120)
  elapsed = time.monotonic() - t0
  last = r.stderr.strip().splitlines()[-1]
  assert r.returncode == 2 and elapsed < 15, (elapsed, r.stderr[-1500:])
  assert last.startswith('error: cifar10 is not prepared in ~/tensorflow_datasets and cannot be downloaded'), last
  assert 'cifar-10-binary.tar.gz' in last and '--config.data.manual_dir=DIR' in last, last
  assert 'Traceback' not in r.stderr and 'OpenCV' not in r.stderr
  assert f'train: workdir {workdir}' in r.stderr  # the default workdir, printed at start
  assert os.path.exists(workdir) == existed


def folder_config(path, cache, steps):
  c = tiny_paper_config(default.get_config())
  c.data.name, c.data.path, c.data.cache_dir = 'folder', str(path), str(cache)
  c.data.image_size, c.data.train_split, c.data.valid_split, c.data.eval_split = 16, 'train', 'train[-8:]', 'train[-8:]'
  c.train.batch_size, c.train.num_steps, c.mesh.num_devices, c.num_samples = 8, steps, 2, 4
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 5
  c.eval.periodic_num_samples, c.eval.periodic_valid_examples = 16, 8
  return c


def test_folder_run_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
  """Images from a user's folder (uint8 records, scaled on the device, marginals bias from the
  records), 3 epochs of 24 images in batches of 8, split over 2 devices, D seeing data and samples
  through DiffAugment, spectrally normalised, with the hinge loss (as a small folder is trained):
  grain's state, the augmentation and the power iteration's vectors resume."""
  make_image_folder(tmp_path / 'photos')

  def config(steps):
    c = folder_config(tmp_path / 'photos', tmp_path / 'cache', steps)
    c.train.augment = 'color,translation,cutout'
    c.train.spectral_norm, c.train.d_loss, c.train.g_loss = True, 'hinge', 'hinge'
    return c
  whole = train.train_and_evaluate(config(10), str(tmp_path / 'whole'))
  train.train_and_evaluate(config(5), str(tmp_path / 'split'))
  resumed = train.train_and_evaluate(config(10), str(tmp_path / 'split'))
  chex.assert_trees_all_equal(whole, resumed)
  assert resumed.d_sn is not None and int(resumed.step) == 10
  assert os.path.exists(tmp_path / 'split' / 'samples' / 'step_0000010.png')
  # the folder's own numbers: logged at each evaluation, and --mode=eval's (pixel space: no weights)
  rows = [json.loads(line) for line in (tmp_path / 'whole' / 'eval_history.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows] == [5, 10] and all(np.isfinite(r['folder/kid_pixels16']) for r in rows), rows
  c = config(10)
  c.eval.num_samples = 24
  result = evaluate.evaluate(train.setup(c, training=False), str(tmp_path / 'whole'))
  assert json.loads((tmp_path / 'whole' / 'eval.json').read_text()) == result
  assert 0.0 <= result['near_copy_fraction'] <= 1.0 and result['fd_pixels16'] > 0, result
  assert np.isfinite(result['kid_pixels16']) and result['kid_pixels16_std'] >= 0, result


def test_kept_checkpoints_and_the_figure1_file(tmp_path):
  """configs/gaussian1d.py, shortened: `keep_checkpoints_every_steps` keeps every 100th step
  beside the newest `max_checkpoints_to_keep`, and panel (a) of Figure 1 is read from the kept
  step at `figure1.from_step`."""
  from PIL import Image
  from configs import gaussian1d
  c = gaussian1d.get_config()
  c.mesh.num_devices = 1
  c.train.num_steps, c.checkpoint_every_steps, c.max_checkpoints_to_keep = 300, 50, 2
  c.log_every_steps = c.eval_every_steps = 150
  c.figure1.from_step, c.figure1.d_steps = 100, 100
  train.train_and_evaluate(c, str(tmp_path))
  assert sorted(int(s) for s in os.listdir(tmp_path / 'checkpoints')) == [100, 200, 250, 300]
  with Image.open(tmp_path / 'figure1.png') as image:
    width, height = image.size
    assert width > 2 * height > 200  # four panels side by side


def test_history_rows_count_training_time_only(tmp_path, monkeypatch):
  """An evaluation that takes 600 s (the clock moved on by it, not slept): the row it writes, and
  every later one, leave those seconds out."""
  real, evaluating = time.perf_counter, [0.0]
  monkeypatch.setattr(time, 'perf_counter', lambda: real() + evaluating[0])

  def slow(exp, g_params, cache, state=None):
    evaluating[0] += 600.0
    return {'x': 1.0}
  monkeypatch.setattr(evaluate, 'periodic_metrics', slow)
  train.train_and_evaluate(ring(20, eval_every_steps=10, checkpoint_every_steps=20), str(tmp_path))
  rows = [json.loads(line) for line in (tmp_path / 'eval_history.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows] == [10, 20]
  assert rows[0]['train_seconds'] < 600 and rows[1]['train_seconds'] - rows[0]['train_seconds'] < 600, rows


def test_eta_is_the_sooner_of_the_step_count_and_the_time_budget(monkeypatch):
  """At 100 steps/s with 99,900 steps to go (16m39s) but 10 training seconds of a budget left,
  the ETA says 0m10s; with no budget, the steps decide. An evaluation's pause counts in neither
  the rate nor the budget: the next line still says 100 steps/s."""
  from gan_jax import progress
  now = [0.0]
  monkeypatch.setattr(progress.time, 'perf_counter', lambda: now[0])
  metrics = dict.fromkeys(('d_real', 'd_fake', 'value', 'd_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm'), 0.5)
  clock = progress.TrainClock(before=49.0)
  budgeted, unbounded = progress.Progress(0, 100_000, 60.0, clock), progress.Progress(0, 100_000)
  now[0] = 1.0
  assert 'ETA 0m10s' in budgeted.line(100, metrics)[0]
  assert 'ETA 16m39s' in unbounded.line(100, metrics)[0]
  with clock.paused():
    now[0] = 31.0
  now[0] = 32.0
  line, rate = budgeted.line(200, metrics)
  assert rate == 100.0 and '100.0 steps/s' in line and 'ETA 0m09s' in line, line
