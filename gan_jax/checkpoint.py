"""Checkpoints: orbax under workdir/checkpoints, holding the GANState, grain's data iterator
state (grain's own orbax handler, one file per process), the training clock, the config that
made them (to refuse resuming as a different experiment) and a digest of every saved array.

A checkpoint counts only when every file is as it was written (a sha256 of each is recorded once
its save finishes), all of it reads back, and every array matches its digest: damage
(a full disk, a copy cut short, bit rot) makes a run fall back to the newest intact step, and the
damaged one is moved aside, never deleted. Readers (eval, sample) open the directory read-only.
"""
import datetime
import hashlib
import json
import logging
import sys
import warnings

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import files, progress
from gan_jax.errors import UserError

# Config entries that may differ on resume: how long and how often, where files live, what is
# measured, and on which devices. Everything else defines the experiment. The learning rates are
# here because lowering them is how a diverged run is resumed (see train._Verified).
SAFE_TO_CHANGE = ('train.num_steps', 'train.time_budget_minutes', 'train.steps_per_call',
                  'log_every_steps', 'eval_every_steps', 'checkpoint_every_steps',
                  'max_checkpoints_to_keep', 'keep_checkpoints_every_steps', 'num_samples',
                  'eval.', 'sample.', 'figure1.', 'mesh.', 'data.prefetch', 'data.manual_dir', 'data.data_dir',
                  'data.cache_dir', 'data.eval_split', 'data.valid_split', 'data.num_eval_examples',
                  'optim.g.lr', 'optim.d.lr')
LATER_FIELDS = ('d_ema', 'd_sn')  # GANState fields added since its first checkpoints; None when unused
DAMAGED_DIR = 'checkpoints_damaged'
MANIFEST_DIR = 'checkpoint_manifests'  # <step>.json: sha256 of each file of the step


class Damaged(Exception):
  """A checkpoint step that cannot be read back intact."""


def config_to_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


def _flatten(tree, prefix=''):
  if not isinstance(tree, dict):
    return {prefix[:-1]: tree}
  out = {}
  for k, v in tree.items():
    out.update(_flatten(v, f'{prefix}{k}.'))
  return out


def config_differences(saved: dict, now: dict):
  """([keys that define the run and differ], [safe keys that differ]) as 'key: saved → now'."""
  a, b = _flatten(saved), _flatten(now)
  fatal, safe = [], []
  for key in sorted(set(a) | set(b)):
    if a.get(key) != b.get(key):
      line = f'{key}: saved {a.get(key, "(absent)")!r}, now {b.get(key, "(absent)")!r}'
      # a key the saved config lacks was added by a later version of this code: not a change
      (safe if key.startswith(SAFE_TO_CHANGE) or key not in a else fatal).append(line)
  return fatal, safe


def digests(state) -> dict:
  """sha256 of every array of the state (bytes, dtype and shape), keyed by its path."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:  # replicated: any copy
      leaf = leaf.addressable_data(0)
    a = np.ascontiguousarray(np.asarray(leaf))
    out[jax.tree_util.keystr(path)] = hashlib.sha256(
        f'{a.dtype}{a.shape}'.encode() + a.tobytes()).hexdigest()
  return out


def all_processes(ok: bool) -> bool:
  """True when `ok` holds on every process (each process reads its own data file)."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils
  return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))


class Checkpoints:
  """A thin, named layer over `ocp.CheckpointManager` (atomic, async writes)."""

  def __init__(self, workdir: str, max_to_keep: int = 3, keep_period=None, read_only: bool = False):
    """Keeps the newest `max_to_keep` checkpoints, and every step divisible by `keep_period`.
    read_only: never writes, renames or cleans up, so it is safe beside a training run."""
    self.workdir = files.resolve(workdir)  # a local directory or a bucket URL
    self.directory = files.join(self.workdir, 'checkpoints')
    self.read_only = read_only
    self._unsealed = []  # steps saved by this run whose files are not yet recorded
    # A write cut short (SIGKILL) leaves only a tmp dir; the writer removes it, a reader must not
    # (it may be the save in progress).
    self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, keep_period=keep_period, create=False, read_only=read_only,
        cleanup_tmp_directories=not read_only))

  def all_steps(self):
    return sorted(self._manager.all_steps()) if files.isdir(self.directory) else []

  def latest_step(self):
    return self._manager.latest_step() if files.isdir(self.directory) else None

  def saved_config(self, step: int) -> dict:
    try:
      return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config']
    except Exception as e:  # orbax raises many types for missing or unreadable files
      raise Damaged(f'its config cannot be read ({_why(e)})') from None

  def check_compatible(self, step: int, config) -> list:
    """Refuses a config that would continue the saved run as a different experiment; returns
    the safe keys that changed."""
    fatal, safe = config_differences(self.saved_config(step), config_to_dict(config))
    if fatal:
      raise UserError(f'the checkpoint at step {step} in {self.directory} was made by a different '
                      f'experiment (incompatible config: {"; ".join(fatal)}). Resume with the config it '
                      'was made with, or start fresh with a new --workdir.')
    return safe

  def restore(self, step: int, target, iterator=None):
    """(state, clock dict) from `step`, its files and arrays checked against their digests;
    `target` gives the state's structure. With `iterator` (grain's), its position is restored
    too. Raises Damaged."""
    self._check_files(step)
    return self._restore(step, target, iterator)

  def _restore(self, step: int, target, iterator=None):
    written_by = self._data_processes(step) if iterator is not None else None
    moved = written_by is not None and written_by != jax.process_count()
    try:
      out = self._restore_items(step, target, None if moved else iterator)
    except Exception as e:
      later = [f for f in LATER_FIELDS if getattr(target, f, True) is None]
      if not later:
        raise Damaged(_why(e)) from None
      # Written before GANState had these (unused) fields: read it without them (the digests
      # below still check every array). A shallow dict keeps the optimiser states' own containers.
      fields = {f: getattr(target, f) for f in target.__dataclass_fields__ if f not in later}
      try:
        out = self._restore_items(step, fields, None if moved else iterator)
      except Exception:
        raise Damaged(_why(e)) from None
      out['state'] = target.replace(**out['state'])
    state = out['state']
    if 'digests' in out:
      bad = [k for k, v in digests(state).items() if out['digests'].get(k) != v]
      if bad or set(out['digests']) != set(digests(state)):
        raise Damaged(f'{len(bad)} array(s) differ from their saved digests (first: {bad[:1]})')
    if moved:  # another slice size: every process takes the one global position
      iterator.set_state(self._shared_data_state(step, written_by))
      getattr(iterator, 'start_prefetch', lambda: None)()  # as grain's own restore does
      progress.log('The checkpoint at step %d was written by %d process(es); resuming with %d.',
                   step, written_by, jax.process_count())
    return state, out['clock']

  def _data_processes(self, step: int):
    """How many processes wrote `step`'s data positions (grain writes one file each), or None."""
    names = files.listdir(files.join(self.directory, str(step), 'data'))
    counts = {int(n.split('-of-')[1][:-5]) for n in names if n.startswith('process_') and n.endswith('.json')}
    return counts.pop() if len(counts) == 1 else None

  def _shared_data_state(self, step: int, processes: int):
    """The data position every process of a `processes`-process run saved. Each process iterates
    the same global batches and reads its own rows of them (data/pipeline.py), so the positions
    are equal, and a run on another number of processes or devices goes on with the same global
    batches."""
    folder = files.join(self.directory, str(step), 'data')
    try:
      states = [files.read_text(files.join(folder, f'process_{i}-of-{processes}.json')) for i in range(processes)]
    except OSError as e:
      raise Damaged(f'its data position is incomplete ({type(e).__name__}: {e})') from None
    if len(set(states)) != 1:
      raise UserError(f'the checkpoint at step {step} holds different data positions for its {processes} '
                      f'processes; resume it with {processes} processes or start a new --workdir.')
    return json.loads(states[0])

  def _restore_items(self, step: int, target, iterator=None) -> dict:
    items = dict(state=ocp.args.StandardRestore(target), clock=ocp.args.JsonRestore())
    if files.isdir(files.join(self.directory, str(step), 'digests')):  # older checkpoints have none
      items['digests'] = ocp.args.JsonRestore()
    if iterator is not None:
      items['data'] = grain.checkpoint.CheckpointRestore(iterator)
    return dict(self._manager.restore(step, args=ocp.args.Composite(**items)))

  def restore_newest(self, config, target, iterator=None, step=None):
    """(step, state, clock) of the newest checkpoint that reads back intact on every process, or
    of `step`; None without checkpoints. A damaged step is reported in one line and, unless
    read-only, moved to workdir/checkpoints_damaged. None intact: a one-line error, nothing moved."""
    _quiet_abandoned_reads()
    steps = self.all_steps()
    candidates = [step] if step is not None else steps[::-1]
    damaged = []
    for s in candidates:
      try:
        self._check_files(s)  # before orbax reads: a damaged file fails here, quietly
        changed = self.check_compatible(s, config)
        state, clock = self._restore(s, target, iterator)
        ok, why = True, None
      except Damaged as e:
        ok, why = False, str(e)
      if all_processes(ok):
        for bad, reason in damaged:
          self._move_aside(bad, reason)
        if changed and not self.read_only:
          progress.log('Resuming with changed settings: %s', '; '.join(changed))
        return s, state, clock
      damaged.append((s, why or 'unreadable on another process'))
      progress.warn(f'The checkpoint at step {s} in {self.directory} is damaged ({damaged[-1][1]}); '
                    + ('trying an earlier one.' if s != candidates[-1] else 'no earlier one is left.'))
    if not damaged:
      return None
    raise UserError(f'no intact checkpoint in {self.directory}: ' + '; '.join(
        f'step {s}: {why}' for s, why in damaged) + '. Nothing was moved or deleted; start fresh with '
        'a new --workdir, or restore the files from a copy.')

  def _move_aside(self, step: int, reason: str) -> None:
    if self.read_only:
      return
    if jax.process_index() == 0:
      stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S')
      dest = files.join(self.workdir, DAMAGED_DIR, f'{step}-{stamp}')
      while files.exists(dest):  # the same step moved aside twice within a second
        dest += '+'
      files.makedirs(files.join(self.workdir, DAMAGED_DIR))
      files.move_tree(files.join(self.directory, str(step)), dest)
      files.write_text(files.join(dest, 'WHY.txt'), reason + '\n')
      if files.exists(self._manifest_path(step)):
        files.write_text(files.join(dest, 'MANIFEST.json'), files.read_text(self._manifest_path(step)))
        files.remove(self._manifest_path(step))
      progress.warn(f'Moved the damaged checkpoint at step {step} to {dest}.')
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f'gan_jax_moved_{step}')
    self._manager.reload()

  def _manifest_path(self, step: int) -> str:
    return files.join(self.workdir, MANIFEST_DIR, f'{step}.json')

  def _file_digests(self, step: int) -> dict:
    root = files.join(self.directory, str(step))
    out = {}
    for rel in files.walk_files(root):
      with files.open_file(files.join(root, rel), 'rb') as f:
        out[rel] = hashlib.file_digest(f, 'sha256').hexdigest()
    return out

  def _check_files(self, step: int) -> None:
    """Every file of the step as it was when its save finished (when that was recorded)."""
    try:
      expected = json.loads(files.read_text(self._manifest_path(step)))
    except (OSError, ValueError):  # saved before manifests, or killed before sealing: arrays still checked
      return
    actual = self._file_digests(step)
    missing = sorted(set(expected) - set(actual))
    changed = sorted(k for k in expected if k in actual and actual[k] != expected[k])
    if missing or changed:
      raise Damaged(f'{len(missing)} file(s) missing and {len(changed)} changed since it was saved '
                    f'(first: {(missing + changed)[0]})')

  def _seal(self) -> None:
    """Records a sha256 of every file of the steps this run saved, once their saves finished,
    and forgets those of steps orbax has since deleted (process 0)."""
    self._manager.wait_until_finished()
    if jax.process_index() != 0 or not self._unsealed:
      return
    steps = set(self.all_steps())
    for step in self._unsealed:
      if step in steps:
        files.write_text(self._manifest_path(step), json.dumps(self._file_digests(step)))
    self._unsealed = []
    for name in files.listdir(files.join(self.workdir, MANIFEST_DIR)):
      if name.endswith('.json') and name[:-5].isdigit() and int(name[:-5]) not in steps:
        files.remove(files.join(self.workdir, MANIFEST_DIR, name))

  def save(self, step: int, state, iterator, clock: dict, config) -> None:
    files.makedirs(self.directory)
    self._seal()
    self._unsealed.append(step)
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator),
        clock=ocp.args.JsonSave({**clock, 'process_count': jax.process_count()}),
        config=ocp.args.JsonSave(config_to_dict(config)), digests=ocp.args.JsonSave(digests(state))),
        force=True)

  def wait(self) -> None:
    self._seal()

  def close(self) -> None:
    self._manager.close()


def _quiet_abandoned_reads() -> None:
  """When one array of a damaged checkpoint fails to read, orbax abandons its other reads, and
  Python reports each as it is collected (an orbax coroutine's error, or 'Event loop is closed'
  from a tensorstore callback landing on orbax's closed loop). `restore_newest` reports the
  damage in one line; those reports (and asyncio's and Python's notes about the same abandoned
  reads) are dropped."""
  if getattr(sys, '_gan_jax_quiet_reads', False):
    return
  default = sys.unraisablehook

  def hook(u):
    code = getattr(u.object, 'cr_code', None)
    orphan = code is not None and '/orbax/' in code.co_filename
    closed = u.exc_type is RuntimeError and str(u.exc_value) == 'Event loop is closed'
    if not (orphan or closed):
      default(u)

  sys.unraisablehook, sys._gan_jax_quiet_reads = hook, True
  logging.getLogger('asyncio').addFilter(lambda r: 'exception was never retrieved' not in r.getMessage())
  warnings.filterwarnings('ignore', r"coroutine '_read_array_index_and_device_put' was never awaited")


def _why(e: Exception) -> str:
  text = ' '.join(str(e).split()).split(' See full TensorStore details')[0]
  return f'{type(e).__name__}: {text[:200]}'
