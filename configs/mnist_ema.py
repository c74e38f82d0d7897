"""The paper's MNIST model trained for sample quality: Algorithm 1 (alternating, k = 1) with the
released hyperparameters but D's learning rate doubled (0.2 on the halved loss: the rate D had
here before the loss was halved as the released code halves it), and a debiased moving average of
G's weights that evaluation and sample grids use (the raw G's numbers are logged beside, raw_g/*).

Why not configs/mnist.py plus an average: the released recipe (simultaneous updates, D at 0.1)
learns several times more slowly on these machines (README, Results). The decay 0.99995 (a
horizon of 20,000 steps) was chosen on the validation split among 0.9999, 0.99995 and 0.99998:
at 30,000 steps it alone met three of the goal's four thresholds there, and its Parzen equalled
the longer horizon's (benchmarks/results/recipes/ema_sweep_seed0.md). Earlier results used
0.99998, an inheritance from a sweep that had looked at test numbers.
"""
from configs import mnist_algorithm1


def get_config():
  c = mnist_algorithm1.get_config()
  c.optim.d.lr = 0.2
  c.train.ema_decay = 0.99995  # debiased, so a long horizon is usable early
  return c
