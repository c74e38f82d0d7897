"""Checkpoints: orbax under workdir/checkpoints, holding the GANState, grain's data iterator
state (grain's own orbax handler, one file per process), the training clock and the config that
made them (to refuse resuming with an incompatible one)."""
import json
import os

import grain
import orbax.checkpoint as ocp

from gan_jax.errors import UserError

# Config entries that determine the shapes and structure of the saved state.
STRUCTURE_KEYS = ('data.name', 'model', 'optim.g.name', 'optim.d.name')
# ... and whether the state holds a moving average of G (any decay restores into either).
STRUCTURE_FLAGS = {'train.ema_decay > 0': lambda cfg: bool(_lookup(cfg, 'train.ema_decay') or 0)}


def _lookup(cfg: dict, dotted: str):
  for part in dotted.split('.'):
    cfg = cfg.get(part, {}) if isinstance(cfg, dict) else {}
  return cfg


def config_to_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


class Checkpoints:
  """A thin, named layer over `ocp.CheckpointManager` (atomic, async writes)."""

  def __init__(self, workdir: str, max_to_keep: int = 3, keep_period=None):
    """Keeps the newest `max_to_keep` checkpoints, and every step divisible by `keep_period`."""
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, keep_period=keep_period, create=False,
        cleanup_tmp_directories=True))  # a write cut short (SIGKILL) leaves only a tmp dir

  def all_steps(self):
    return list(self._manager.all_steps()) if os.path.isdir(self.directory) else []

  def latest_step(self):
    return self._manager.latest_step() if os.path.isdir(self.directory) else None

  def check_compatible(self, step: int, config) -> None:
    saved = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config']
    now = config_to_dict(config)
    diffs = [f'{key}: saved {_lookup(saved, key)!r}, now {_lookup(now, key)!r}'
             for key in STRUCTURE_KEYS if _lookup(saved, key) != _lookup(now, key)]
    diffs += [f'{name}: saved {flag(saved)}, now {flag(now)}'
              for name, flag in STRUCTURE_FLAGS.items() if flag(saved) != flag(now)]
    if diffs:
      raise UserError(f'the workdir holds a checkpoint (step {step}) from an incompatible config ('
                      + '; '.join(diffs) + '). Use a new --workdir, or the config it was made with.')

  def restore(self, step: int, target, iterator=None):
    """(state, {'train_seconds': ...}) from `step`; `target` gives the state's structure. With
    `iterator` (grain's), its position is restored too."""
    items = dict(state=ocp.args.StandardRestore(target), clock=ocp.args.JsonRestore())
    if iterator is not None:
      items['data'] = grain.checkpoint.CheckpointRestore(iterator)
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # orbax raises several types for structure/shape/corruption problems
      raise UserError(f'cannot restore the checkpoint at step {step} in {self.directory} '
                      f'({type(e).__name__}: {str(e)[:300]}). Use a new --workdir, or delete that '
                      'step to fall back to an earlier one.') from None
    return out['state'], out['clock']

  def save(self, step: int, state, iterator, clock: dict, config) -> None:
    os.makedirs(self.directory, exist_ok=True)
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator),
        clock=ocp.args.JsonSave(clock), config=ocp.args.JsonSave(config_to_dict(config))), force=True)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
