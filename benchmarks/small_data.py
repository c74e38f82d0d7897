"""Training options on the conv pair at equal training time, on small or full MNIST.

  python benchmarks/small_data.py --study=augment --minutes=8 \
      --manual_dir=../shared/data/mnist --workdir=workdirs/small_data

Each run is `launch.py --config=configs/mnist_dcgan.py` with the study's flags, for `--minutes`
of training time (evaluation pauses excluded), two runs at a time, each pinned to one core
(`taskset`), every metric on the VALIDATION split (train[50000:60000]) every `--eval_every`
steps: FD in the evaluation classifier's feature space, precision/recall, and memorisation (a
sample is a near copy when it is closer to its nearest *training* image than 99% of validation
images are to theirs; the training split is the subset). Then each final checkpoint is evaluated
once on the TEST split. Writes `<workdir>/<study>.md` (a table) and the histories; the last line
reads `small_data study=<name> <run>=<valid FD>/<test FD> ...`.

Studies:
- augment: MNIST train[:N] for N in --sizes (1,000 and 5,000), without and with DiffAugment
  (`train.augment=color,translation,cutout`, Zhao et al. 2020's policy for small data).
- options: the full training split, the config as is, with spectral normalisation of D, and with
  the hinge loss for both players.
"""
import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_enum('study', 'augment', ['augment', 'options'], 'Which comparison to run.')
flags.DEFINE_float('minutes', 8.0, 'Training minutes per run.')
flags.DEFINE_integer('eval_every', 2000, 'Steps between validation evaluations.')
flags.DEFINE_string('manual_dir', None, 'Directory of the official MNIST archives.', required=True)
flags.DEFINE_string('workdir', 'workdirs/small_data', 'Where the runs and the table go.')
flags.DEFINE_integer('parallel', 2, 'Runs at a time, each pinned to its own core.')
flags.DEFINE_list('sizes', ['1000', '5000'], 'The augment study\'s training-subset sizes.')
flags.DEFINE_bool('report_only', False, 'Write the table from finished runs, training nothing.')

AUGMENT = 'color,translation,cutout'
def studies():
  return {
      'augment': [(f'{n}_{name}', [f'--config.data.train_split=train[:{n}]'] + extra)
                  for n in FLAGS.sizes
                  for name, extra in (('plain', []), ('diffaugment', [f'--config.train.augment={AUGMENT}']))],
      'options': [('config', []),
                  ('spectral_norm', ['--config.train.spectral_norm=True']),
                  ('hinge', ['--config.train.d_loss=hinge', '--config.train.g_loss=hinge'])],
  }
KEYS = ('frechet_distance', 'precision', 'recall', 'near_copy_fraction', 'nn_train_distance_ratio')


def launch(name, extra, mode, core):
  workdir = os.path.join(FLAGS.workdir, FLAGS.study, name)
  cmd = [sys.executable, 'launch.py', '--config=configs/mnist_dcgan.py', f'--workdir={workdir}', f'--mode={mode}',
         f'--config.data.manual_dir={FLAGS.manual_dir}', *extra]
  if mode == 'train':
    cmd += [f'--config.train.time_budget_minutes={FLAGS.minutes}', '--config.eval.periodic_parzen=full',
            f'--config.eval_every_steps={FLAGS.eval_every}', f'--config.checkpoint_every_steps={FLAGS.eval_every}']
  else:
    cmd += ['--config.eval.split=test']
  os.makedirs(workdir, exist_ok=True)
  log = open(os.path.join(workdir, f'{mode}.log'), 'w')
  return subprocess.Popen(['taskset', '-c', str(core)] + cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def run_all(runs, mode):
  """Every run in `mode`, `--parallel` at a time; a failure stops the study with its log's end."""
  queue, active = list(runs), {}
  while queue or active:
    while queue and len(active) < FLAGS.parallel:
      core = min(set(range(FLAGS.parallel)) - set(active.values()))
      name, extra = queue.pop(0)
      active[launch(name, extra, mode, core)] = core
      print(f'{mode}: {name} started on core {core}', flush=True)
    time.sleep(5)
    for proc in [p for p in active if p.poll() is not None]:
      del active[proc]
      if proc.returncode:
        sys.exit(f'a {mode} run failed (exit {proc.returncode}); see the logs under {FLAGS.workdir}')


def history(name):
  path = os.path.join(FLAGS.workdir, FLAGS.study, name, 'eval_history.jsonl')
  return [json.loads(line) for line in open(path) if line.strip()]


def evaluation_classifier():
  """Trained (or found cached) once here, so that the parallel runs do not each train it."""
  sys.path.insert(0, ROOT)
  from configs import mnist_dcgan
  from gan_jax.eval import held_out
  config = mnist_dcgan.get_config()
  config.data.manual_dir = FLAGS.manual_dir
  images, labels = held_out.unit_split(config.data, config.data.valid_split, config.seed)
  held_out.load_classifier(config, images, labels)


def main(argv):
  del argv
  runs = studies()[FLAGS.study]
  if not FLAGS.report_only:
    evaluation_classifier()
    run_all(runs, 'train')
    run_all(runs, 'eval')  # the test split, once per final checkpoint
  lines = [f'# {FLAGS.study}: mnist_dcgan, {FLAGS.minutes:g} training minutes per run, one core each', '',
           f'`python benchmarks/small_data.py --study={FLAGS.study} --minutes={FLAGS.minutes:g} '
           f'--sizes={",".join(FLAGS.sizes)} --manual_dir=../shared/data/mnist`' if FLAGS.study == 'augment' else
           f'`python benchmarks/small_data.py --study={FLAGS.study} --minutes={FLAGS.minutes:g} '
           f'--manual_dir=../shared/data/mnist`', '',
           '| run | valid FD at steps 2,000, 4,000, ... | valid near copies | valid precision / recall | final step | test FD | test near copies | test precision / recall |',
           '|---|---|---|---|---|---|---|---|']
  summary = []
  for name, _ in runs:
    rows = [r for r in history(name) if 'valid/frechet_distance' in r]
    last = rows[-1]
    test = json.load(open(os.path.join(FLAGS.workdir, FLAGS.study, name, 'eval.json')))
    fds = ', '.join(f'{r["valid/frechet_distance"]:.1f}' for r in rows)
    lines.append(f'| {name} | {fds} | {last["valid/near_copy_fraction"]:.4f} | '
                 f'{last["valid/precision"]:.3f} / {last["valid/recall"]:.3f} | {test["step"]} | {test["frechet_distance"]:.1f} | '
                 f'{test["near_copy_fraction"]:.4f} | {test["precision"]:.3f} / {test["recall"]:.3f} |')
    summary.append(f'{name}={last["valid/frechet_distance"]:.1f}/{test["frechet_distance"]:.1f}')
  out = os.path.join(FLAGS.workdir, f'{FLAGS.study}.md')
  with open(out, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  print(f'small_data study={FLAGS.study} ' + ' '.join(summary))


if __name__ == '__main__':
  app.run(main)
