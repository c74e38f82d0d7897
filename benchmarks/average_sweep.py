"""Choose G's weight average after the fact, on the validation split, from one run's kept checkpoints.

A run with --config.keep_checkpoints_every_steps=N keeps G's raw weights every N steps. Any
average over the run is then a weighted sum of those snapshots: a debiased moving average of decay
d that starts at step S gives snapshot t (S < t ≤ T) the weight d^(T - t), normalised. This
approximates what train.ema_decay and train.ema_start_step compute every step (snapshots N steps
apart instead of every step; the run's own average, when it kept one, is scored beside as the
check of that approximation). Every number is on the validation split: this chooses a recipe,
the test split is for the run that reports it.

  python benchmarks/average_sweep.py --config=configs/mnist_ema.py --workdir=WORKDIR \
      --config.data.manual_dir=DIR --decays=0.99995,0.99998,1 --starts=0,10000,20000
"""
import json
import os
import sys

from absl import app, flags, logging
import jax
import numpy as np
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import train  # noqa: E402
from gan_jax.eval import evaluate
from gan_jax.checkpoint import Checkpoints  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file('config', None, 'The run\'s config file.', lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', None, 'The run\'s workdir (its kept checkpoints).')
_DECAYS = flags.DEFINE_list('decays', ['0.99995', '0.99998', '1'], 'Per-step decays (1: a uniform average).')
_STARTS = flags.DEFINE_list('starts', ['0', '10000', '20000'], 'Steps at which the average begins.')
_OUT = flags.DEFINE_string('out', None, 'JSON lines file for the results (default: WORKDIR/average_sweep.jsonl).')
flags.mark_flags_as_required(['config', 'workdir'])

KEYS = ('parzen_ll', 'frechet_distance', 'precision', 'recall', 'coverage')


def snapshot_average(snapshots, steps, decay: float, start: int):
  """The debiased average of the snapshots at `steps` > start with weights decay^(T - t): with a
  snapshot every step, what train.ema_decay=decay, train.ema_start_step=start keeps."""
  steps = np.asarray(steps, np.float64)
  chosen = steps > start
  weights = np.where(chosen, decay ** (steps.max() - steps), 0.0)
  weights = weights / weights.sum()
  return jax.tree.map(lambda *leaves: sum(w * leaf for w, leaf in zip(weights, leaves) if w > 0), *snapshots)


def main(argv):
  del argv
  cfg = _CONFIG.value
  exp = train.setup(cfg, training=False)
  ckpt = Checkpoints(_WORKDIR.value, read_only=True)
  steps = sorted(ckpt.all_steps())
  ckpt.close()
  logging.info('%d checkpoints, steps %d..%d', len(steps), steps[0], steps[-1])
  snapshots, last = [], None
  for s in steps:
    last, _ = evaluate.load_state(exp, _WORKDIR.value, s)
    snapshots.append(jax.device_get(last.g_params))
  cache, rows = {}, []

  def score(name, g_params, **extra):
    samples = evaluate.generate(exp, g_params, cfg.eval.num_samples, cfg.seed + 1)
    result = evaluate.evaluate_samples(exp, samples, cache, 'valid')
    row = {'average': name, 'step': steps[-1], **extra, **{f'valid/{k}': result[k] for k in KEYS}}
    logging.info('%s', json.dumps(row))
    rows.append(row)

  score('raw G', snapshots[-1])
  if last.g_ema is not None:
    score(f'the run\'s own (train.ema_decay={cfg.train.ema_decay})', last.g_ema)
  for decay in map(float, _DECAYS.value):
    for start in map(int, _STARTS.value):
      score('snapshots', snapshot_average(snapshots, steps, decay, start),
            decay=decay, start=start, snapshot_every=steps[1] - steps[0])
  out = _OUT.value or os.path.join(_WORKDIR.value, 'average_sweep.jsonl')
  with open(out, 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  print(f'{"average":<45} {"decay":>8} {"start":>6} ' + ' '.join(f'{k[:9]:>9}' for k in KEYS))
  for r in rows:
    print(f'{r["average"]:<45} {r.get("decay", ""):>8} {r.get("start", ""):>6} '
          + ' '.join(f'{r["valid/" + k]:9.3f}' for k in KEYS))


if __name__ == '__main__':
  app.run(main)
