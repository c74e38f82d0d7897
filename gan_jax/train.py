"""Training an experiment (gan_jax/experiment.py builds it from the config): resume, Algorithm 1's
loop with progress, periodic evaluation, checkpoints and agreed stops, then the final evaluation.
`launch.py` calls `train_and_evaluate`."""
import json
import os
import signal

import jax
import numpy as np

from gan_jax import files, optim, progress, step
from gan_jax.eval import evaluate, figure1, figures
from gan_jax.checkpoint import Checkpoints, Damaged
from gan_jax.errors import NonFiniteError, UserError
from gan_jax.experiment import Experiment, setup  # noqa: F401  (train.setup: the public name)
from gan_jax.models import sample_noise


def save_labelled_indices(exp: Experiment, workdir: str) -> None:
  """Which labels a semi-supervised run saw, beside its checkpoints."""
  if exp.labelled is not None and jax.process_index() == 0:
    files.write_text(files.join(workdir, 'labelled_indices.json'), json.dumps(
        {'split': exp.config.data.train_split, 'indices': [int(i) for i in exp.labelled]}))


def restore_or_init(exp: Experiment, ckpt: Checkpoints):
  """(state, training seconds so far) from the newest intact checkpoint, or the initial state."""
  found = ckpt.restore_newest(exp.config, exp.state_shapes, exp.iterator)
  if found is None:
    return exp.init_state, 0.0
  step_num, state, clock = found
  # inject_hyperparams keeps constant hyperparameters in the optimizer state: take them from
  # the current config, so that e.g. a lowered --config.optim.d.lr applies on resume.
  # (Scheduled ones are recomputed from the update count at every step either way.)
  state = state.replace(
      g_opt_state=state.g_opt_state._replace(hyperparams=optim.initial_hyperparams(exp.spec.g_tx, state.g_params)),
      d_opt_state=state.d_opt_state._replace(hyperparams=optim.initial_hyperparams(exp.spec.d_tx, state.d_params)))
  progress.log('Resumed from the checkpoint at step %d in %s', step_num, ckpt.directory)
  return state, float(clock['train_seconds'])


def fixed_noise(config, n: int):
  """The same z at every evaluation, so sample grids show one model changing over time."""
  return sample_noise(jax.random.fold_in(jax.random.PRNGKey(config.seed), 7),
                      (n, config.model.noise_dim), config.model.noise)


def write_samples(exp: Experiment, g_params, step_num: int, workdir: str, writer) -> str:
  cfg = exp.config
  n = cfg.num_samples
  rows = (np.arange(n) // int(np.ceil(np.sqrt(n)))) % max(exp.spec.num_classes, 1)  # a class per row
  samples = np.asarray(exp.sample(g_params, fixed_noise(cfg, n), rows if exp.spec.num_classes else None))
  path = files.join(workdir, 'samples', f'step_{step_num:07d}.png')
  if jax.process_index() == 0:
    reference = exp.train_source.read(np.arange(min(2000, len(exp.train_source)))) if samples.ndim == 2 else None
    image = figures.save_samples(samples, path, cfg.data.scale, reference)
    writer.image(step_num, 'samples', image)
  return path


class StopSignals:
  """SIGINT/SIGTERM ask the loop to stop at the next step boundary (then it checkpoints).
  A second signal interrupts at once. Held from setup on: a signal during data preparation,
  restore or the first compile is kept for the first boundary instead of landing as a
  KeyboardInterrupt in library code (some of which swallows it)."""

  def __enter__(self):
    self.requested = None
    self._previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    if self.requested:
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name
    # os.write, not logging: a handler may run while the logging lock is held in this thread
    os.write(2, f'{self.requested}: stopping with a checkpoint at the next step boundary '
                '(send it again to stop at once).\n'.encode())

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class _Verified:
  """Finite-checks each step's metrics one step late, so the check overlaps the next step's
  compute instead of stalling the pipeline; `now` checks the newest before anything is saved."""

  def __init__(self, ckpt, dp):
    self._ckpt, self._dp, self._pending = ckpt, dp, None

  def add(self, step_num, metrics):
    self.now()
    self._pending = (step_num, metrics)

  def now(self):
    if self._pending is not None:
      step_num, metrics = self._pending  # metrics of the call's steps: [steps_per_call] each
      self._pending = None
      stacked = self._dp.unreplicate(metrics)
      finite = np.all([np.isfinite(stacked[k]) for k in ('d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm')], axis=0)
      bad = int(np.argmin(finite)) if not finite.all() else None
      values = {k: float(v[-1] if bad is None else v[bad]) for k, v in stacked.items()}
      if bad is not None:
        step_num = step_num - len(finite) + 1 + bad
        last = self._ckpt.latest_step()
        raise NonFiniteError(
            f'step {step_num} produced non-finite losses or gradients (d_loss={values["d_loss"]}, '
            f'g_loss={values["g_loss"]}, |grad d|={values["d_grad_norm"]}, |grad g|={values["g_grad_norm"]}). '
            + (f'The last good checkpoint, step {last} in {self._ckpt.directory}, is kept; '
               'lower the learning rate (optim.*.lr) and run again to resume from it.'
               if last is not None else 'No checkpoint was written yet; lower optim.*.lr and start again.'))
      return values


def train_and_evaluate(config, workdir: str):
  """Trains per the config, resuming from the newest checkpoint in workdir; with eval.at_end, then
  evaluates the final checkpoint once on eval.split and prints the Table 1 row. Returns the final
  state (host copy)."""
  with StopSignals() as stop:
    exp = setup(config)
    files.check_writable(workdir, jax.process_index())  # before any work
    save_labelled_indices(exp, workdir)
    ckpt = Checkpoints(workdir, config.max_checkpoints_to_keep, config.keep_checkpoints_every_steps)
    try:
      state, train_seconds = restore_or_init(exp, ckpt)
      final, outcome = train(exp, ckpt, state, workdir, train_seconds, stop)
    finally:
      ckpt.wait()
      ckpt.close()
  if config.eval.at_end and outcome != 'stopped' and not evaluate.evaluated(workdir, int(final.step)):
    evaluate_at_end(config, workdir, int(final.step))
  return final


def train(exp, ckpt, state, workdir, train_seconds, stop):
  """Algorithm 1 from `state` to train.num_steps or the time budget, logging, evaluating and
  saving at their intervals; a signal (`stop`, the caller's StopSignals) stops it at the next
  step boundary. Returns the final state and why training ended: 'finished', 'budget',
  'stopped' (a signal) or 'complete' (there was nothing to train)."""
  config = exp.config
  start, num_steps, per_call = int(state.step), config.train.num_steps, config.train.steps_per_call
  if start % per_call:
    raise UserError(f'the checkpoint is at step {start}, not a multiple of train.steps_per_call={per_call}; '
                    'resume with the steps_per_call it was saved with.')
  announce(config, exp, workdir, start)
  progress.truncate_history(workdir, start)
  p_steps = step.make_train_steps(exp.spec, exp.dp)
  rstate = exp.dp.replicate(state)
  writer, clock = progress.Writer(workdir), progress.TrainClock(train_seconds)
  budget = config.train.time_budget_minutes
  meter = progress.Progress(start, num_steps, None if budget is None else 60 * budget, clock)
  verified, eval_cache = _Verified(ckpt, exp.dp), {}
  # Stops are agreed: each process's reasons ride a psum over all devices, dispatched after each
  # call and read one call later (as the metrics are), so every process stops after the same call.
  agree = exp.dp.any_process()
  done, saved, pending, signalled, budget_hit = start, start, None, 0, 0
  due = lambda every: done % every == 0 or done == num_steps
  while done < num_steps:
    over_budget = budget is not None and clock.train_seconds() >= 60 * budget
    batches = jax.tree.map(lambda *b: np.stack(b, axis=1), *[next(exp.iterator) for _ in range(per_call)])
    rstate, metrics = p_steps(rstate, exp.dp.batch(batches))
    reasons = agree([bool(stop.requested), over_budget])
    done += per_call
    verified.add(done, metrics)
    if due(config.log_every_steps):
      log_progress(meter, writer, done, verified.now())
    if due(config.eval_every_steps):
      trained = clock.train_seconds()  # read before the pause: inside it, the pause counts
      with clock.paused():
        evaluate_periodically(exp, rstate, done, workdir, writer, eval_cache, trained)
    if due(config.checkpoint_every_steps):
      trained = clock.train_seconds()
      with clock.paused():
        verified.now()
        save(ckpt, exp, rstate, done, trained)
        saved = done
    signalled, budget_hit = exp.dp.unreplicate(pending) if pending is not None else (0, 0)
    pending = reasons
    if signalled or budget_hit:
      break
  verified.now()
  if done != saved:
    save(ckpt, exp, rstate, done, clock.train_seconds())
  outcome = report_end(stop, signalled, budget_hit, budget, start, done, num_steps)
  ckpt.wait()
  final = exp.dp.unreplicate(rstate)
  if config.figure1.enabled and done == num_steps and jax.process_index() == 0:
    write_figure1(exp, ckpt, final, workdir)
  writer.close()
  return final, outcome


def announce(config, exp, workdir, start):
  if start >= config.train.num_steps:
    progress.log('The run in %s is complete at step %d (train.num_steps=%d): nothing to train; raise '
                 '--config.train.num_steps to go on.', workdir, start, config.train.num_steps)
    return
  budget = config.train.time_budget_minutes
  progress.log('Training %s/%s on %s for steps %d..%d%s (%d device(s), batch %d, k=%d).',
               config.model.generator, config.model.discriminator, config.data.name, start + 1,
               config.train.num_steps, '' if budget is None else f' or {budget:g} training minutes',
               exp.dp.num_devices, config.train.batch_size, config.train.k)


def log_progress(meter, writer, done, metrics):
  line, rate = meter.line(done, metrics)
  progress.log(line)
  writer.scalars(done, {**metrics, 'steps_per_second': rate})


def evaluate_periodically(exp, rstate, done, workdir, writer, cache, trained):
  """A sample grid and the validation metrics (eval.periodic_parzen) of the G evaluation uses,
  and of the raw G beside a moving average: what the average adds, at every evaluation."""
  g_params = exp.dp.unreplicate(step.sampling_params(rstate))
  write_samples(exp, g_params, done, workdir, writer)
  quick = evaluate.periodic_metrics(exp, g_params, cache, rstate)
  if quick and rstate.g_ema is not None:
    raw = evaluate.periodic_metrics(exp, exp.dp.unreplicate(rstate.g_params), cache)
    quick.update({f'raw_g/{k}': v for k, v in raw.items()})
  if quick:
    progress.log('eval at step %d: %s', done, ', '.join(f'{k} {v:.4g}' for k, v in quick.items()))
    writer.scalars(done, quick, prefix='eval')
    progress.append_history(workdir, {'step': done, 'train_seconds': trained, **quick})


def save(ckpt, exp, rstate, done, trained):
  # global arrays go to orbax as they are (each host writes its part); pmap's are copied out
  state = rstate if exp.dp.mesh is not None else exp.dp.unreplicate(rstate)
  ckpt.save(done, state, exp.iterator, {'train_seconds': trained}, exp.config)


def report_end(stop, signalled, budget_hit, budget, start, done, num_steps) -> str:
  if signalled:  # every process says it: on a pod each one's log shows where it stopped
    progress.log_all('Stopped by %s at step %d; checkpoint saved. Run the same command to resume.',
                     stop.requested or 'a signal to another process', done)
    return 'stopped'
  if budget_hit:
    progress.log_all('Time budget of %g training minutes reached at step %d.', budget, done)
    return 'budget'
  return 'finished' if done > start else 'complete'


def evaluate_at_end(config, workdir, step_num):
  """The final checkpoint, evaluated once on eval.split (the test split: the reported number)."""
  progress.log('Evaluating the checkpoint at step %d on the %s split (%d samples).', step_num,
               config.eval.split, config.eval.num_samples)
  result = evaluate.evaluate(setup(config, training=False), workdir, step_num)
  if jax.process_index() == 0:
    print(evaluate.table1_row(result, config.data.name))


def write_figure1(exp, ckpt, final_state, workdir):
  cfg = exp.config.figure1
  earlier = [s for s in ckpt.all_steps() if s <= cfg.from_step] or sorted(ckpt.all_steps())[:1]
  try:
    early_state, _ = ckpt.restore(max(earlier), exp.state_shapes)
  except Damaged as e:
    progress.warn(f'No Figure 1: the checkpoint at step {max(earlier)} is damaged ({e}).')
    return
  stages = figure1.figure_stages(exp, early_state, final_state, cfg.d_steps, cfg.g_steps)
  path = figure1.write(exp, stages, files.join(workdir, 'figure1.png'))
  progress.log('Wrote %s (panel (a) from the checkpoint at step %d).', path, max(earlier))
