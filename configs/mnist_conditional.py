"""The paper's §7 item 1, a conditional model p(x | y) (Mirza & Osindero 2014): G(z, y) and D(x, y)
with the one-hot class label beside z and beside D's (dropped-out) input pixels, everything else
configs/mnist_ema.py (the paper's MLP/maxout pair, Algorithm 1, the debiased average of G).

--mode=eval adds the classifier's accuracy on the samples against the classes they were asked for
(overall and per class) and the class-conditional Fréchet distance; sample grids have one class per
row. `model.num_classes` conditions the dcgan pair too (a projection discriminator).
"""
from configs import mnist_ema


def get_config():
  c = mnist_ema.get_config()
  c.model.num_classes = 10
  return c
