"""MNIST with the dcgan pair (not in the paper): a "deconvolutional" G (7×7 map → 14 → 28, GroupNorm,
tanh) against a conv D (28 → 14 → 7, leaky ReLU), pixels in [-1, 1], Gaussian noise, batch 64 and
Adam with β1 0.5 (DCGAN's recipe) at 2e-3 for both players, ten times DCGAN's rate.

Width 32 keeps one training step fast on 2 CPU cores (see the README's configs table). The rate
was chosen on the validation split among 2e-4, 5e-4, 1e-3 and 2e-3 (FD at 4,000 steps 169, 104,
77, 71; benchmarks/results/conv/2026-12-01_tuning.md): on a CPU budget the step count is small,
and the faster rate learns more per step without diverging by 15 minutes. At that rate the FD
levelled off near 70 by 8,000 steps; the R1 penalty on D (Mescheder et al. 2018) took it below 40
on validation in the same time, at ~30% more time per step.
"""
from configs import default


def get_config():
  c = default.dcgan_config(width=32)
  c.data.name = 'mnist'
  c.optim.g.lr = c.optim.d.lr = 2e-3
  # R1 on D, and a moving average of G from the step where G's FD used to level off: chosen on
  # the validation split (γ 0.3 among 0, 0.3, 1, 10; benchmarks/results/conv/2026-12-01_tuning.md).
  c.train.r1_gamma = 0.3
  c.train.ema_decay, c.train.ema_start_step = 0.999, 4000
  c.train.num_steps = 50_000
  c.train.steps_per_call = 10
  c.eval_every_steps = 2000
  c.checkpoint_every_steps = 2000
  return c
