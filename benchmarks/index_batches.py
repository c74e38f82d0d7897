"""A training step's example indices: grain's composed pipeline, an example at a time, against
gan_jax's `pipeline.StepIndices`, a step at a time (the same indices: tests/test_input_pipeline.py).

  python benchmarks/index_batches.py [--rounds=15] [--steps=200]

For each case (examples, global batch, k): grain's `MapDataset.range(N).shuffle(seed).batch(B,
drop_remainder=True).repeat().batch(k, drop_remainder=True)[s]` and `StepIndices(N, B, k, seed)(s)`
for --steps consecutive steps s, timed interleaved (grain, then ours, each round on the next
--steps steps, so epoch boundaries and the whole-epoch draws fall inside the timed rounds as in
training), --rounds rounds after one untimed round. Prints each side's milliseconds per step
(median over rounds) and the median ratio grain / ours with a bootstrap 95% interval. One thread:
in training the prefetch thread does this work beside the step, on the same cores.
"""
import os
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.timing import cpu_info, median_interval, round_robin  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer('rounds', 15, 'Timed rounds.')
flags.DEFINE_integer('steps', 200, 'Steps per side per round.')
flags.DEFINE_integer('bootstrap', 10_000, 'Bootstrap resamples for the interval of the median ratio.')

CASES = (('configs/ring2d.py: 100,000 points, batch 256', 100_000, 256, 1),
         ('MNIST train[:50000], batch 100', 50_000, 100, 1),
         ('MNIST, batch 100, k=5', 50_000, 100, 5),
         ('ImageNet-sized, 1,281,167, batch 256 (positions walked)', 1_281_167, 256, 1))


def main(argv):
  del argv
  import grain
  import numpy as np
  from gan_jax.data import pipeline
  print(cpu_info())
  for name, n, batch, k in CASES:
    composed = (grain.MapDataset.range(n).shuffle(seed=0).batch(batch, drop_remainder=True)
                .repeat().batch(k, drop_remainder=True))
    ours = pipeline.StepIndices(n, batch, k, 0)
    at = {'grain': 0, 'ours': 0}

    def side(which, draw):
      def call():
        draw(at[which])
        at[which] += 1
      return call

    fns = {'grain': side('grain', lambda s: np.asarray(composed[s])), 'ours': side('ours', ours)}
    rounds = round_robin(fns, {'grain': FLAGS.steps, 'ours': FLAGS.steps}, FLAGS.rounds,
                         {'grain': FLAGS.steps, 'ours': FLAGS.steps})
    ms = {w: float(np.median([r[w][0] for r in rounds])) / FLAGS.steps * 1e3 for w in fns}
    ratio, lo, hi = median_interval([r['grain'][0] / r['ours'][0] for r in rounds], FLAGS.bootstrap)
    print(f'{name}: grain {ms["grain"]:.3f} ms/step, StepIndices {ms["ours"]:.3f} ms/step; '
          f'grain / ours {ratio:.1f}x (95% interval {lo:.1f}-{hi:.1f}), {FLAGS.rounds} rounds of {FLAGS.steps} steps')


if __name__ == '__main__':
  app.run(main)
