"""Checkpoint integrity: every kind of damage to the newest checkpoint falls back to the newest
intact one (moved aside, never deleted) and the run still ends bit-identical to an uninterrupted
one; readers never write; resume refuses a different experiment; one history row per step."""
import json
import os
import shutil

import chex
import flax
import jax
import numpy as np
import pytest

from benchmarks.checkpoint_damage import DAMAGE, bit_flip, truncate
from gan_jax import train
from gan_jax.eval import parzen
from gan_jax.checkpoint import DAMAGED_DIR, MANIFEST_DIR, Checkpoints, config_differences, config_to_dict
from tests.test_launch import launch, ring


EVERY_10 = ['--config.checkpoint_every_steps=10', '--config.mesh.num_devices=1']  # launch.py's runs here


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """A run checkpointed at 10 and 20, the same run uninterrupted to 30, and its setup. Both are
  launch.py runs, as the resumes the tests compare them with are: on one core (a test worker's
  share of a 2-core AVX2 machine), XLA:CPU's code for the same one-device step differs in the last
  bits between a process with 4 CPU devices (this one) and one with 1 (launch.py's)."""
  base = tmp_path_factory.mktemp('integrity')
  for name, steps in (('at20', 20), ('whole', 30)):
    r = launch(base / name, f'--config.train.num_steps={steps}', *EVERY_10)
    assert r.returncode == 0, r.stderr[-2000:]
  exp = train.setup(ring(30, checkpoint_every_steps=10))
  at10, _ = Checkpoints(str(base / 'at20'), read_only=True).restore(10, exp.init_state)
  whole, _ = Checkpoints(str(base / 'whole'), read_only=True).restore(30, exp.init_state)
  return base, whole, exp, at10


@pytest.mark.parametrize('recorded', [True, False], ids=['files recorded', 'killed before recording'])
@pytest.mark.parametrize('damage', DAMAGE, ids=lambda f: f.__name__)
def test_damaged_newest_checkpoint_is_moved_aside_and_the_one_before_restored(runs, tmp_path, damage, recorded):
  base, _, exp, at10 = runs
  wd = tmp_path / 'wd'
  shutil.copytree(base / 'at20', wd)
  if not recorded:  # only orbax's own reading and the array digests stand between damage and use
    shutil.rmtree(wd / MANIFEST_DIR)
  damage(str(wd / 'checkpoints' / '20'))
  ckpt = Checkpoints(str(wd))
  step, state, _ = ckpt.restore_newest(exp.config, exp.init_state, exp.iterator)
  assert step == 10 and ckpt.all_steps() == [10]
  chex.assert_trees_all_equal(at10, state)
  moved = os.listdir(wd / DAMAGED_DIR)
  assert len(moved) == 1 and moved[0].startswith('20-'), moved
  assert (wd / DAMAGED_DIR / moved[0] / 'WHY.txt').read_text().strip()


def test_damaged_run_reports_one_line_and_ends_bit_identical_to_an_uninterrupted_run(runs, tmp_path):
  base, whole, exp, _ = runs
  wd = tmp_path / 'wd'
  shutil.copytree(base / 'at20', wd)
  bit_flip(str(wd / 'checkpoints' / '20'))
  r = launch(wd, '--config.train.num_steps=30', *EVERY_10)
  assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert 'The checkpoint at step 20' in r.stderr and 'changed since it was saved' in r.stderr
  assert 'Resumed from the checkpoint at step 10' in r.stderr
  resumed, _ = Checkpoints(str(wd), read_only=True).restore(30, exp.init_state)
  chex.assert_trees_all_equal(whole, resumed)


def test_no_intact_checkpoint_is_a_one_line_error_and_nothing_is_moved(runs, tmp_path):
  wd = tmp_path / 'wd'
  shutil.copytree(runs[0] / 'at20', wd)
  truncate(str(wd / 'checkpoints' / '20'))
  bit_flip(str(wd / 'checkpoints' / '10'))
  before = sorted(os.listdir(wd / 'checkpoints'))
  r = launch(wd, '--config.train.num_steps=30', *EVERY_10)
  assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith('error: no intact checkpoint') and 'step 20' in last and 'step 10' in last, last
  assert sorted(os.listdir(wd / 'checkpoints')) == before and not (wd / DAMAGED_DIR).exists()


def test_eval_beside_a_save_in_progress_writes_nothing_and_falls_back_read_only(runs, tmp_path):
  wd = tmp_path / 'wd'
  shutil.copytree(runs[0] / 'at20', wd)
  in_progress = wd / 'checkpoints' / '30.orbax-checkpoint-tmp-1764000000'  # a save being written
  (in_progress / 'state').mkdir(parents=True)
  (in_progress / 'state' / 'part').write_bytes(b'half written')
  bit_flip(str(wd / 'checkpoints' / '20'))
  listing = sorted(os.listdir(wd / 'checkpoints'))
  r = launch(wd, '--mode=eval', '--config.mesh.num_devices=1')
  assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert json.loads((wd / 'eval.json').read_text())['step'] == 10  # the newest intact one
  assert sorted(os.listdir(wd / 'checkpoints')) == listing, 'a reader changed the checkpoints'
  assert (in_progress / 'state' / 'part').read_bytes() == b'half written'
  assert not (wd / DAMAGED_DIR).exists()


@flax.struct.dataclass
class StateBeforeDEma:
  """GANState as it was saved before it had D's average (checkpoints from 2026-11 and earlier)."""
  step: jax.Array
  g_params: object
  d_params: object
  g_opt_state: object
  d_opt_state: object
  rng: jax.Array
  g_ema: object = None


def test_a_checkpoint_written_before_d_ema_resumes_bit_identical(runs, tmp_path):
  base, whole, _, _ = runs
  exp = train.setup(ring(30, checkpoint_every_steps=10))
  state, clock = Checkpoints(str(base / 'at20'), read_only=True).restore(10, exp.init_state, exp.iterator)
  old = StateBeforeDEma(**{k: getattr(state, k) for k in StateBeforeDEma.__dataclass_fields__})
  wd = tmp_path / 'wd'
  ckpt = Checkpoints(str(wd))
  ckpt.save(10, old, exp.iterator, clock, exp.config)
  ckpt.wait()
  ckpt.close()
  assert not (wd / 'checkpoints' / '10' / 'state' / 'd_ema').exists()
  r = launch(wd, '--config.train.num_steps=30', *EVERY_10)
  assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert 'Resumed from the checkpoint at step 10' in r.stderr and 'damaged' not in r.stderr, r.stderr[-2000:]
  resumed, _ = Checkpoints(str(wd), read_only=True).restore(30, exp.init_state)
  chex.assert_trees_all_equal(whole, resumed)


def test_resume_refuses_every_setting_that_defines_the_run():
  saved = config_to_dict(ring(20))
  defining = dict(seed=1, data=dict(name='gaussian1d'), train=dict(batch_size=128, k=2,
                  update_mode='simultaneous', g_loss='minimax', ema_decay=0.5),
                  model=dict(noise_dim=3, g_kwargs=dict(hidden=16)), optim=dict(d=dict(b1=0.9)))
  for group, values in defining.items():
    for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
      c = ring(20)
      if key is None:
        c[group] = value
      elif isinstance(value, dict):
        c[group][key].update(value)
      else:
        c[group][key] = value
      fatal, _ = config_differences(saved, config_to_dict(c))
      assert len(fatal) == 1 and fatal[0].startswith(group if key is None else f'{group}.{key}'), (group, key, fatal)
  for split_key, value in (('train_split', 'train[:10]'), ('scale', 'unit'), ('image_size', 32)):
    c = ring(20)
    c.data[split_key] = value
    assert config_differences(saved, config_to_dict(c))[0], split_key
  safe = ring(90, log_every_steps=10, eval_every_steps=30, checkpoint_every_steps=30)
  safe.train.time_budget_minutes, safe.optim.d.lr, safe.mesh.num_devices = 5.0, 1e-4, 2
  fatal, changed = config_differences(saved, config_to_dict(safe))
  assert fatal == [] and len(changed) == 7, changed


def test_resume_with_another_seed_names_the_key_and_keeps_the_checkpoint(tmp_path):
  wd = tmp_path / 'run'
  assert launch(wd, '--config.train.num_steps=5', '--config.mesh.num_devices=1').returncode == 0
  r = launch(wd, '--config.train.num_steps=10', '--config.seed=3', '--config.train.batch_size=128',
             '--config.mesh.num_devices=1')
  assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-1500:]
  assert 'seed: saved 0, now 3' in r.stderr and 'train.batch_size: saved 256, now 128' in r.stderr
  assert 'new --workdir' in r.stderr and sorted(os.listdir(wd / 'checkpoints')) == ['5']


def test_eval_history_holds_one_row_per_step_across_resumes(tmp_path):
  wd = str(tmp_path / 'wd')
  cfg = lambda n: ring(n, eval_every_steps=10, checkpoint_every_steps=20)
  train.train_and_evaluate(cfg(30), wd)  # checkpoints 20, 30; rows 10, 20, 30
  shutil.rmtree(os.path.join(wd, 'checkpoints', '30'))  # as if killed before the last save
  with open(os.path.join(wd, 'eval_history.jsonl'), 'a') as f:
    f.write('{"step": 40, "modes_cov')  # a row cut short by the kill
  train.train_and_evaluate(cfg(40), wd)  # resumes at 20: evaluates 30 and 40 again
  train.train_and_evaluate(cfg(50), wd)
  with open(os.path.join(wd, 'eval_history.jsonl')) as f:
    steps = [json.loads(line)['step'] for line in f]
  assert steps == [10, 20, 30, 40, 50]


def test_parzen_distances_use_full_precision_matmuls():
  x = np.ones((4, 3), np.float32)
  jaxpr = jax.make_jaxpr(parzen._log_likelihood_chunk)(x, x, x.sum(1), np.ones(2, np.float32))
  dots = [e for e in jaxpr.jaxpr.eqns[0].params['jaxpr'].jaxpr.eqns if e.primitive.name == 'dot_general']
  assert dots and all(str(e.params['precision']).count('HIGHEST') == 2 for e in dots), dots
