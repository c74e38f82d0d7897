"""The paper's MNIST experiment, trained to reach Table 1 on a laptop: Algorithm 1 (alternating,
k = 1) with the released hyperparameters but D's learning rate doubled (0.2 on the halved loss: the
rate D had before the loss was halved as the released code halves it), and a debiased moving
average of G's weights that evaluation and sample grids use (the raw G's numbers are logged
beside, raw_g/*). It trains for 30 training minutes, then evaluates the final checkpoint once on
the test split and prints the Table 1 row (eval.at_end).

Why not configs/mnist.py plus an average: the released recipe (simultaneous updates, D at 0.1)
learns several times more slowly on these machines (docs/results.md). The decay 0.99998 (a
horizon of 50,000 steps) was chosen on the validation split for this 30-minute budget: at 30
training minutes its validation Parzen was 224.1 (seed 0) and 229.0 (seed 1) against 215.7 for
0.99995 (seed 0); 0.99995 gives the better classifier FD there (21.6 against 31.7 and 41.2), so
`--config.train.ema_decay=0.99995` is the choice when FD matters more than Parzen
(benchmarks/results/recipes/*_history.jsonl).
"""
from configs import mnist_algorithm1


def get_config():
  c = mnist_algorithm1.get_config()
  c.optim.d.lr = 0.2
  c.train.ema_decay = 0.99998  # debiased, so a long horizon is usable early
  c.train.time_budget_minutes = 30.0  # training time: evaluation and checkpoint pauses excluded
  c.eval.at_end = True
  return c
