"""What a person watching the run sees: a progress line with rate and ETA, and TensorBoard."""
import contextlib
import json
import logging as std_logging
import time

from absl import logging
import jax
import numpy as np

from gan_jax import files


def _duration(seconds: float) -> str:
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s'


class Progress:
  """Step rate over the last interval, ETA, and the step's metrics on one line. Both count
  `clock`'s training seconds (a TrainClock: evaluation and checkpoint pauses left out, so the
  line after an evaluation shows the step's own rate). With a time budget (training seconds),
  the ETA is the sooner of the two ends."""

  def __init__(self, start_step: int, num_steps: int, budget_seconds=None, clock=None):
    self._clock = clock if clock is not None else TrainClock()
    self.num_steps, self._step, self._time = num_steps, start_step, self._clock.train_seconds()
    self._budget = budget_seconds

  def line(self, step: int, metrics: dict) -> str:
    now = self._clock.train_seconds()
    rate = (step - self._step) / max(now - self._time, 1e-9)
    self._step, self._time = step, now
    eta = (self.num_steps - step) / rate if rate > 0 else float('inf')
    if self._budget is not None:
      eta = min(eta, max(self._budget - now, 0.0))
    m = metrics
    return (f'step {step}/{self.num_steps} ({100 * step / max(self.num_steps, 1):.1f}%) | '
            f'{rate:.1f} steps/s | ETA {_duration(eta) if np.isfinite(eta) else "?"} | '
            f'D(x) {m["d_real"]:.3f} D(G(z)) {m["d_fake"]:.3f} V {m["value"]:.3f} '
            f'd_loss {m["d_loss"]:.3f} g_loss {m["g_loss"]:.3f} '
            f'|∇d| {m["d_grad_norm"]:.3f} |∇g| {m["g_grad_norm"]:.3f}'), rate


class Writer:
  """TensorBoard event files via tensorboardX; a no-op on every process but 0."""

  def __init__(self, logdir: str):
    self._w = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter  # imported here: process 0 alone writes
      self._w = SummaryWriter(logdir)

  def scalars(self, step: int, values: dict, prefix: str = 'train') -> None:
    if self._w:
      for k, v in values.items():
        self._w.add_scalar(f'{prefix}/{k}', float(v), step)

  def image(self, step: int, tag: str, image_hwc) -> None:
    if self._w:
      self._w.add_image(tag, image_hwc, step, dataformats='HWC')

  def close(self) -> None:
    if self._w:
      self._w.close()


# Library warnings a user can do nothing about (tfds warns at import that an optional video
# dependency is missing; no image dataset here uses it).
_UNACTIONABLE = ('OpenCV is not installed', 'has no dataset_info.json',
                 # orbax, for every read-only reader (eval, sample), which is what we asked for
                 'Given directory is read only', 'CheckpointManagerOptions.read_only=True')


def _keep(record) -> bool:
  message = record.getMessage()
  if any(text in message for text in _UNACTIONABLE):
    return False
  return record.levelno >= std_logging.WARNING or '/gan_jax/' in record.pathname or '/benchmarks/' in record.pathname


def quiet_library_logs() -> None:
  """Keeps our INFO lines (progress, resume, data) and libraries' warnings and errors, and drops
  libraries' INFO chatter (orbax logs every file it renames). Call it before importing tfds."""
  logging.set_verbosity(logging.INFO)
  for handler in std_logging.getLogger().handlers:
    handler.addFilter(_keep)


def log(msg: str, *args) -> None:
  if jax.process_index() == 0:
    logging.info(msg, *args)


def log_all(msg: str, *args) -> None:
  """Logged by every process, each line naming its process when there are several."""
  prefix = f'process {jax.process_index()}: ' if jax.process_count() > 1 else ''
  logging.info(prefix + msg, *args)


def warn(msg: str, *args) -> None:
  if jax.process_index() == 0:
    logging.warning(msg, *args)


class TrainClock:
  """Wall-clock seconds spent training, evaluation and checkpoint pauses left out; `before`: the
  seconds of earlier sessions of the same run (from its checkpoint), so budgets and the Parzen
  history count the whole run across resumes."""

  def __init__(self, before: float = 0.0):
    self._start, self._paused = time.perf_counter(), -float(before)

  @contextlib.contextmanager
  def paused(self):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      self._paused += time.perf_counter() - t0

  def train_seconds(self) -> float:
    return time.perf_counter() - self._start - self._paused


def truncate_history(workdir: str, step: int) -> None:
  """Drops eval_history.jsonl rows after `step` (a resumed run evaluates those steps again) and
  any line a kill cut short, so the file holds one row per step across any number of resumes."""
  path = files.join(workdir, 'eval_history.jsonl')
  if jax.process_index() != 0 or not files.exists(path):
    return
  kept = []
  for line in files.read_text(path).splitlines():
    try:
      if json.loads(line)['step'] <= step:
        kept.append(line + '\n')
    except (ValueError, KeyError, TypeError):
      pass
  files.write_text(path, ''.join(kept))


def append_history(workdir: str, record: dict) -> None:
  """One JSON line per periodic evaluation in workdir/eval_history.jsonl (process 0)."""
  if jax.process_index() == 0:
    files.append_line(files.join(workdir, 'eval_history.jsonl'), json.dumps(record))
