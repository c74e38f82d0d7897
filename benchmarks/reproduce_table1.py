"""Reproduce Table 1 (MNIST Parzen-window log-likelihood) from scratch, with a time budget.

  python benchmarks/reproduce_table1.py --config=configs/mnist.py --seeds=1 --minutes=20 \
      --workdir=workdirs/table1 --config.data.manual_dir=../shared/data/mnist

For each seed: trains for `--minutes` of training time (evaluation pauses excluded), running
every metric of the protocol on the VALIDATION split (train[50000:60000]) every
`eval_every_steps`: the time to each goal is read from there. Then the final checkpoint is
evaluated once on the TEST split (Parzen, classifier Fréchet distance, score, class coverage,
precision/recall/coverage, memorisation). Nothing here is chosen by looking at test numbers.
Prints a table beside the paper's, writes it as markdown and a plot (PNG) into --workdir; the
last line reads `table1 config=<name> seeds=<n> parzen=<mean>±<se> minutes=<t>`.
"""
import json
import math
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', os.path.join(ROOT, 'configs', 'mnist.py'), 'Experiment config file.', lock_config=True)
flags.DEFINE_integer('seeds', 1, 'Number of seeds (first_seed, first_seed + 1, ...), each trained from scratch.')
flags.DEFINE_integer('first_seed', 0, 'The first seed (to add seeds to an earlier table run by run).')
flags.DEFINE_float('minutes', 20.0, 'Training-time budget per seed, in minutes (the run stops at '
                   'this budget or at train.num_steps, whichever comes first).')
flags.DEFINE_string('workdir', 'workdirs/table1', 'Where each seed\'s run, the table and the plot go.')

PAPER = [('DBN', 138, 2), ('Stacked CAE', 121, 1.6), ('Deep GSN', 214, 1.1), ('Adversarial nets', 225, 2)]
TARGET = 225.0
# Issue 14's goal for one checkpoint: the paper's Parzen and a generator good on the other metrics
GOAL = {'parzen_ll': (TARGET, 1), 'frechet_distance': (40.0, -1), 'precision': (0.8, 1), 'recall': (0.5, 1)}


def read_history(workdir):
  path = os.path.join(workdir, 'eval_history.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def meets(row, goal, prefix=''):
  """Every metric of `goal` ({name: (bound, +1 at least / -1 at most)}) is in `row` and meets it."""
  return all(prefix + k in row and sign * (row[prefix + k] - bound) >= 0 for k, (bound, sign) in goal.items())


def time_to(history, goal, prefix=''):
  """Training minutes to the first validation evaluation that meets `goal` (None: never)."""
  hits = [h['train_seconds'] for h in history if meets(h, goal, prefix + 'valid/')]
  return min(hits) / 60 if hits else None


def plot(runs, path, name):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for seed, run in runs.items():
    h = run['history']
    minutes = [r['train_seconds'] / 60 for r in h]
    ax.plot(minutes, [r['valid/parzen_ll'] for r in h], marker='o', ms=3, label=f'seed {seed}')
    if h and 'raw_g/valid/parzen_ll' in h[0]:
      ax.plot(minutes, [r['raw_g/valid/parzen_ll'] for r in h], ls=':', marker='.', ms=3, label=f'seed {seed}, raw G')
  ax.axhline(TARGET, color='k', ls='--', lw=1, label='paper: 225 ± 2')
  ax.set_xlabel('training minutes (this machine)')
  ax.set_ylabel('Parzen log-likelihood (MNIST validation)')
  ax.set_title(f'Table 1 reproduction: {name}')
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def markdown(runs, name, minutes):
  lines = ['| model | Parzen LL (MNIST test) |', '|---|---|']
  lines += [f'| {m} (paper) | {v} ± {se} |' for m, v, se in PAPER]
  for seed, r in runs.items():
    e = r['eval']
    lines.append(f'| gan_jax `{name}` seed {seed}, {r["minutes"]:.1f} min, {e["step"]} steps | '
                 f'{e["parzen_ll"]:.1f} ± {e["parzen_se"]:.1f} |')
  lines += ['', 'Final checkpoint on the test split (evaluated once); minutes to a goal on the validation split.', '',
            '| seed | steps | train min | Parzen | σ | Fréchet dist. | precision | recall | coverage | '
            'classifier score | classes ≥1% | near copies | NN-distance ratio | min to 225 | min to goal |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for seed, r in runs.items():
    for prefix in ('', 'raw_g/'):  # raw_g/: the raw G of a run that samples a moving average
      e = r['eval']
      if prefix + 'parzen_ll' not in e:
        continue
      get = lambda key: e.get(prefix + key, float('nan'))
      t225, tgoal = (time_to(r['history'], goal, prefix) for goal in ({'parzen_ll': GOAL['parzen_ll']}, GOAL))
      when = lambda t: 'not reached' if t is None else f'{t:.1f}'
      lines.append(f'| {seed}{" (raw G)" if prefix else ""} | {e["step"]} | {r["minutes"]:.1f} | '
                   f'{get("parzen_ll"):.1f} ± {get("parzen_se"):.1f} | {get("parzen_sigma"):.3f} | '
                   f'{get("frechet_distance"):.2f} | {get("precision"):.3f} | {get("recall"):.3f} | '
                   f'{get("coverage"):.3f} | {get("classifier_score"):.2f} | {e.get(prefix + "classes_covered", "-")} | '
                   f'{get("near_copy_fraction"):.4f} | {get("nn_train_distance_ratio"):.3f} | {when(t225)} | {when(tgoal)} |')
  conditional = [(seed, r['eval']) for seed, r in runs.items() if 'conditional_accuracy' in r['eval']]
  if conditional:  # a conditional G: the classes it was asked for, against the classifier's reading
    classes = sorted(int(k.split('/')[1]) for k in conditional[0][1] if k.startswith('conditional_accuracy/'))
    lines += ['', 'Conditional samples (each class in turn), test split: the classifier\'s accuracy against the '
              'class asked for (overall, then per class) and the class-conditional Fréchet distance.', '',
              '| seed | accuracy | ' + ' | '.join(map(str, classes)) + ' | class-cond. FD |',
              '|---|---|' + '---|' * len(classes) + '---|']
    for seed, e in conditional:
      lines.append(f'| {seed} | {e["conditional_accuracy"]:.4f} | '
                   + ' | '.join(f'{e[f"conditional_accuracy/{c}"]:.3f}' for c in classes)
                   + f' | {e["class_conditional_fd"]:.2f} |')
  goal = ', '.join(f'{k} {">=" if sign > 0 else "<="} {b:g}' for k, (b, sign) in GOAL.items())
  lines += ['', f'Goal: {goal}.']
  return '\n'.join(lines)


def main(argv):
  del argv
  import jax
  from gan_jax import progress
  progress.quiet_library_logs()  # before tfds is imported: it warns at import
  from gan_jax import train
  from gan_jax.eval import evaluate
  from gan_jax.errors import UserError
  base = FLAGS.config
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(FLAGS['config'])))[0]
  runs = {}
  try:
    for seed in range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds):
      config = base.copy_and_resolve_references()
      with config.unlocked():
        config.seed = seed
        config.train.time_budget_minutes = FLAGS.minutes
        config.eval.periodic_parzen = 'full'  # every metric, on the validation split
        config.eval.split = 'test'            # the final checkpoint, once
        config.eval.at_end = False            # evaluated below, with the history beside it
      workdir = os.path.join(FLAGS.workdir, f'{name}_seed{seed}')
      logging.info('Seed %d: training %s for %.1f minutes into %s', seed, name, FLAGS.minutes, workdir)
      train.train_and_evaluate(config, workdir)
      history = read_history(workdir)
      result = evaluate.evaluate(train.setup(config, training=False), workdir)
      runs[seed] = {'eval': result, 'history': history, 'minutes': result['train_minutes']}
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  table = markdown(runs, name, FLAGS.minutes)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  with open(os.path.join(FLAGS.workdir, f'table1_{name}.md'), 'w') as f:
    f.write(table + '\n')
  plot(runs, os.path.join(FLAGS.workdir, f'table1_{name}.png'), name)
  print(table)
  values = [r['eval']['parzen_ll'] for r in runs.values()]
  mean = sum(values) / len(values)
  # across seeds when there are several; else the test-set standard error of the one run
  se = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) / math.sqrt(len(values))
        if len(values) > 1 else next(iter(runs.values()))['eval']['parzen_se'])
  print(f'table1 config={name} seeds={len(values)} parzen={mean:.1f}±{se:.1f} minutes={FLAGS.minutes:g}')
  del jax


if __name__ == '__main__':
  app.run(main)
